//! The screen's power state: on, or dark for one or more reasons. The
//! display loop feeds it the reasons every tick and acts only on changes, so
//! each backend is switched once per transition, not once per frame.

/// Why the screen should be dark right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DarkReasons {
    /// Inside the night window of `[gallery]`.
    pub night: bool,
    /// Blanked by hand (button, key, remote).
    pub blanked: bool,
    /// The camera has seen no motion for `display.sleep_after_still_minutes`.
    pub still: bool,
}

impl DarkReasons {
    pub fn any(self) -> bool {
        self.night || self.blanked || self.still
    }

    /// Night and blank switch the camera off too; stillness needs it to
    /// watch for someone coming back.
    pub fn camera_off(self) -> bool {
        self.night || self.blanked
    }

    fn describe(self) -> &'static str {
        match (self.night, self.blanked) {
            (true, true) => "night schedule and blank",
            (true, false) => "night schedule",
            (false, true) => "blank",
            _ => "no motion seen",
        }
    }
}

/// A transition the display loop must carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Power the panel down; capture and inference rest.
    Off(&'static str),
    /// Wake the panel; capture and inference resume.
    On,
}

/// Starts "on": a daemon started at night turns the screen off on its first tick.
#[derive(Debug, Default)]
pub struct Power {
    dark: bool,
}

impl Power {
    pub fn is_dark(&self) -> bool {
        self.dark
    }

    /// The change to make, if the reasons flip the state.
    pub fn update(&mut self, reasons: DarkReasons) -> Option<Change> {
        let want = reasons.any();
        if want == self.dark {
            return None;
        }
        self.dark = want;
        Some(if want {
            Change::Off(reasons.describe())
        } else {
            Change::On
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIGHT: DarkReasons = DarkReasons {
        night: true,
        blanked: false,
        still: false,
    };
    const BLANK: DarkReasons = DarkReasons {
        night: false,
        blanked: true,
        still: false,
    };
    const STILL: DarkReasons = DarkReasons {
        night: false,
        blanked: false,
        still: true,
    };
    const DAY: DarkReasons = DarkReasons {
        night: false,
        blanked: false,
        still: false,
    };

    #[test]
    fn starting_at_night_turns_the_screen_off_once() {
        let mut p = Power::default();
        assert_eq!(p.update(NIGHT), Some(Change::Off("night schedule")));
        assert_eq!(p.update(NIGHT), None);
        assert!(p.is_dark());
    }

    #[test]
    fn a_new_reason_while_dark_changes_nothing_and_the_last_one_gone_wakes() {
        let mut p = Power::default();
        assert_eq!(p.update(BLANK), Some(Change::Off("blank")));
        let both = DarkReasons {
            night: true,
            blanked: true,
            still: false,
        };
        assert_eq!(p.update(both), None);
        assert_eq!(p.update(NIGHT), None);
        assert_eq!(p.update(DAY), Some(Change::On));
        assert!(!p.is_dark());
    }

    #[test]
    fn stillness_darkens_the_screen_but_keeps_the_camera_watching() {
        let mut p = Power::default();
        assert_eq!(p.update(STILL), Some(Change::Off("no motion seen")));
        assert!(!STILL.camera_off() && NIGHT.camera_off() && BLANK.camera_off());
        assert_eq!(p.update(DAY), Some(Change::On), "motion wakes it");
    }

    #[test]
    fn daytime_start_changes_nothing() {
        assert_eq!(Power::default().update(DAY), None);
    }
}
