//! Topic names: one place, so discovery, state and commands agree.

/// The entities a frame exposes, by their topic part.
pub const STYLE: &str = "style";
pub const STRENGTH: &str = "strength";
pub const GALLERY: &str = "gallery";
pub const SCREEN: &str = "screen";
pub const NEXT: &str = "next";
pub const PREV: &str = "prev";
pub const FPS: &str = "fps";
pub const INFER_MS: &str = "inference_ms";

#[derive(Clone, Debug)]
pub struct Topics {
    pub device_id: String,
    /// `styleframe/<device_id>`
    pub base: String,
    pub discovery_prefix: String,
    /// `styleframe/group/<name>`, when in a group.
    pub group: Option<String>,
}

impl Topics {
    pub fn new(device_id: &str, discovery_prefix: &str, group: &str) -> Topics {
        Topics {
            device_id: device_id.into(),
            base: format!("styleframe/{device_id}"),
            discovery_prefix: discovery_prefix.into(),
            group: (!group.is_empty()).then(|| format!("styleframe/group/{group}")),
        }
    }

    /// "online" / "offline", retained; the broker publishes "offline" as our last will.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    pub fn state(&self, entity: &str) -> String {
        format!("{}/{entity}", self.base)
    }

    pub fn command(&self, entity: &str) -> String {
        format!("{}/{entity}/set", self.base)
    }

    /// What we subscribe to for commands.
    pub fn command_filter(&self) -> String {
        format!("{}/+/set", self.base)
    }

    /// The entity a command topic addresses (`styleframe/<id>/style/set` -> "style").
    pub fn command_entity<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        rest.strip_suffix("/set").filter(|e| !e.contains('/'))
    }

    /// Home Assistant announces itself here when it (re)starts.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// `<prefix>/<component>/<device_id>/<entity>/config`
    pub fn discovery(&self, component: &str, entity: &str) -> String {
        format!(
            "{}/{component}/{}/{entity}/config",
            self.discovery_prefix, self.device_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_topics_name_their_entity_and_nothing_else() {
        let t = Topics::new("hall", "homeassistant", "");
        assert_eq!(t.command(STYLE), "styleframe/hall/style/set");
        assert_eq!(t.command_entity("styleframe/hall/style/set"), Some("style"));
        assert_eq!(t.command_entity("styleframe/hall/style"), None);
        assert_eq!(t.command_entity("styleframe/hall2/style/set"), None);
        assert_eq!(t.command_entity("styleframe/hall/a/b/set"), None);
        assert_eq!(t.group, None);
        let g = Topics::new("hall", "homeassistant", "museum");
        assert_eq!(g.group.as_deref(), Some("styleframe/group/museum"));
        assert_eq!(
            g.discovery("select", STYLE),
            "homeassistant/select/hall/style/config"
        );
    }
}
