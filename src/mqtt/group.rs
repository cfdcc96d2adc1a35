//! A gallery of frames: frames in one group follow one another's style.
//!
//! Each frame publishes a style change it made itself (button, page, signal,
//! gallery timer) as `{"from", "seq", "style"}` on the group topic. A change
//! that came from the group is not published again (no echo), and messages are
//! ordered by (seq, from), so two frames changed at the same moment settle on
//! the same style instead of swapping or ping-ponging.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMsg {
    pub from: String,
    pub seq: u64,
    pub style: String,
}

/// Styles the frame may not know (and so never shows) must not pile up.
const PENDING: usize = 8;

pub struct GroupSync {
    me: String,
    /// The newest (seq, from) seen or sent.
    newest: (u64, String),
    /// The style the group shows, as far as this frame knows.
    current: Option<String>,
    /// Styles asked for by the group that the frame has not shown yet.
    pending: std::collections::VecDeque<String>,
}

impl GroupSync {
    pub fn new(me: &str) -> GroupSync {
        GroupSync {
            me: me.into(),
            newest: (0, String::new()),
            current: None,
            pending: Default::default(),
        }
    }

    /// The frame shows `style` (whatever caused it): the message to publish, if any.
    /// The first style seen is where the frame starts, not a change to spread.
    pub fn local(&mut self, style: &str) -> Option<GroupMsg> {
        let Some(current) = &self.current else {
            self.current = Some(style.into());
            return None;
        };
        // The group's own changes come back through here as the frame shows them.
        if let Some(i) = self
            .pending
            .iter()
            .position(|p| crate::styles::same_name(p, style))
        {
            self.pending.drain(..=i);
            return None;
        }
        if crate::styles::same_name(current, style) {
            return None;
        }
        self.newest = (self.newest.0 + 1, self.me.clone());
        self.current = Some(style.into());
        Some(GroupMsg {
            from: self.me.clone(),
            seq: self.newest.0,
            style: style.into(),
        })
    }

    /// A message from the group topic: the style to show, if this frame should follow.
    pub fn remote(&mut self, m: GroupMsg) -> Option<String> {
        if m.from == self.me {
            return None;
        }
        let key = (m.seq, m.from);
        if key <= self.newest {
            return None;
        }
        self.newest = key;
        self.current = Some(m.style.clone());
        if self.pending.len() == PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(m.style.clone());
        Some(m.style)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers every message to every frame (the broker), the way a group runs:
    /// a frame that follows reports its new style back through `local`.
    fn settle(frames: &mut [(GroupSync, String)], mut queue: Vec<GroupMsg>) -> usize {
        let mut sent = queue.len();
        while let Some(m) = (!queue.is_empty()).then(|| queue.remove(0)) {
            for (g, shown) in frames.iter_mut() {
                if let Some(style) = g.remote(m.clone()) {
                    *shown = style.clone();
                    if let Some(out) = g.local(&style) {
                        sent += 1;
                        queue.push(out);
                    }
                }
            }
            assert!(sent < 100, "echo storm");
        }
        sent
    }

    fn group(n: usize) -> Vec<(GroupSync, String)> {
        (0..n)
            .map(|i| {
                let mut g = GroupSync::new(&format!("f{i}"));
                assert_eq!(g.local("wave"), None, "the start style was spread");
                (g, "wave".to_string())
            })
            .collect()
    }

    #[test]
    fn a_change_on_one_frame_reaches_all_with_one_message() {
        let mut frames = group(3);
        let m = frames[1].0.local("scream").unwrap();
        frames[1].1 = "scream".into();
        assert_eq!(settle(&mut frames, vec![m]), 1);
        assert!(frames.iter().all(|(_, s)| s == "scream"));
        // The next change, from another frame, wins over the older one.
        let m = frames[2].0.local("udnie").unwrap();
        frames[2].1 = "udnie".into();
        assert_eq!(m.seq, 2);
        settle(&mut frames, vec![m]);
        assert!(frames.iter().all(|(_, s)| s == "udnie"));
    }

    #[test]
    fn simultaneous_changes_settle_on_one_style() {
        let mut frames = group(2);
        let a = frames[0].0.local("scream").unwrap();
        let b = frames[1].0.local("udnie").unwrap();
        frames[0].1 = "scream".into();
        frames[1].1 = "udnie".into();
        settle(&mut frames, vec![a, b]);
        assert_eq!(frames[0].1, frames[1].1, "the frames disagree");
    }

    #[test]
    fn group_changes_arriving_faster_than_the_frame_shows_them_are_not_echoed() {
        let mut g = GroupSync::new("me");
        g.local("wave");
        let m = |seq, style: &str| GroupMsg {
            from: "b".into(),
            seq,
            style: style.into(),
        };
        assert!(g.remote(m(1, "scream")).is_some());
        assert!(g.remote(m(2, "udnie")).is_some());
        // The frame shows both in turn: neither is a change of its own.
        assert_eq!(g.local("scream"), None);
        assert_eq!(g.local("udnie"), None);
        // A press afterwards is.
        assert_eq!(g.local("wave").map(|m| m.seq), Some(3));
    }

    #[test]
    fn own_and_old_messages_are_ignored() {
        let mut g = GroupSync::new("me");
        g.local("wave");
        let own = GroupMsg {
            from: "me".into(),
            seq: 9,
            style: "x".into(),
        };
        assert_eq!(g.remote(own), None);
        let new = GroupMsg {
            from: "b".into(),
            seq: 3,
            style: "y".into(),
        };
        assert_eq!(g.remote(new.clone()).as_deref(), Some("y"));
        assert_eq!(g.remote(new), None, "a repeated message was applied twice");
        let old = GroupMsg {
            from: "c".into(),
            seq: 2,
            style: "z".into(),
        };
        assert_eq!(g.remote(old), None);
    }
}
