//! Home Assistant MQTT discovery: one retained config message per entity,
//! all attached to one device and one availability topic.

use serde_json::{json, Value};

use super::topics::{self, Topics};
use crate::daemon::state::FrameState;

/// (discovery topic, payload) for every entity of the frame.
pub fn messages(t: &Topics, state: &FrameState) -> Vec<(String, Value)> {
    let options: Vec<&str> = state.styles.iter().map(|s| s.name.as_str()).collect();
    let mut out = vec![];
    let mut add = |component: &str, entity: &str, name: &str, extra: Value| {
        let mut v = common(t, entity, name);
        merge(&mut v, extra);
        out.push((t.discovery(component, entity), v));
    };
    add(
        "select",
        topics::STYLE,
        "Style",
        json!({
            "command_topic": t.command(topics::STYLE),
            "state_topic": t.state(topics::STYLE),
            "options": options,
            "icon": "mdi:palette",
        }),
    );
    add(
        "number",
        topics::STRENGTH,
        "Strength",
        json!({
            "command_topic": t.command(topics::STRENGTH),
            "state_topic": t.state(topics::STRENGTH),
            "min": 0.0, "max": 1.0, "step": 0.05, "mode": "slider",
        }),
    );
    for (entity, name, icon) in [
        (topics::GALLERY, "Gallery mode", "mdi:image-multiple"),
        (topics::SCREEN, "Screen", "mdi:monitor"),
    ] {
        add(
            "switch",
            entity,
            name,
            json!({
                "command_topic": t.command(entity),
                "state_topic": t.state(entity),
                "payload_on": "ON", "payload_off": "OFF",
                "icon": icon,
            }),
        );
    }
    for (entity, name, icon) in [
        (topics::NEXT, "Next style", "mdi:skip-next"),
        (topics::PREV, "Previous style", "mdi:skip-previous"),
    ] {
        add(
            "button",
            entity,
            name,
            json!({ "command_topic": t.command(entity), "payload_press": "PRESS", "icon": icon }),
        );
    }
    add(
        "sensor",
        topics::FPS,
        "Frame rate",
        json!({
            "state_topic": t.state(topics::FPS),
            "unit_of_measurement": "fps", "state_class": "measurement",
            "entity_category": "diagnostic",
        }),
    );
    add(
        "sensor",
        topics::INFER_MS,
        "Inference time",
        json!({
            "state_topic": t.state(topics::INFER_MS),
            "unit_of_measurement": "ms", "device_class": "duration",
            "state_class": "measurement", "entity_category": "diagnostic",
        }),
    );
    out
}

/// Keys every entity shares: name, ids, availability and the device.
fn common(t: &Topics, entity: &str, name: &str) -> Value {
    json!({
        "name": name,
        "unique_id": format!("styleframe_{}_{entity}", t.device_id),
        "availability_topic": t.availability(),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [format!("styleframe_{}", t.device_id)],
            "name": format!("styleframe {}", t.device_id),
            "manufacturer": "styleframe",
            "model": "styleframe",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
    })
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, extra) {
        a.extend(b);
    }
}

/// The retained state topics and their payloads.
pub fn state_messages(t: &Topics, s: &FrameState) -> Vec<(String, String)> {
    let on_off = |b: bool| if b { "ON" } else { "OFF" }.to_string();
    let mut v = vec![
        (t.state(topics::STYLE), s.style.clone()),
        (t.state(topics::STRENGTH), format!("{:.2}", s.strength)),
        (t.state(topics::GALLERY), on_off(s.gallery)),
        (t.state(topics::SCREEN), on_off(s.screen_on)),
        (t.state(topics::FPS), format!("{:.1}", s.fps)),
    ];
    if let Some(ms) = s.infer_ms {
        v.push((t.state(topics::INFER_MS), format!("{ms:.0}")));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::StyleInfo;

    #[test]
    fn every_entity_shares_the_device_and_availability_and_ids_are_unique() {
        let t = Topics::new("hall", "homeassistant", "");
        let s = FrameState {
            styles: vec![StyleInfo {
                name: "wave".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let m = messages(&t, &s);
        assert_eq!(m.len(), 8);
        let mut ids: Vec<&str> = m
            .iter()
            .map(|(_, v)| v["unique_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 8, "unique_id repeated");
        for (topic, v) in &m {
            assert!(topic.starts_with("homeassistant/") && topic.ends_with("/config"));
            assert_eq!(v["availability_topic"], "styleframe/hall/availability");
            assert_eq!(v["device"]["identifiers"][0], "styleframe_hall");
        }
        assert_eq!(m[0].1["options"], json!(["wave"]));
    }
}
