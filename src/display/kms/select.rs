//! Which DRM card, connector and mode to drive: pure logic over what a
//! [`DrmProbe`] reports, so it is tested against fakes of a Pi 4 / Pi 5.
//!
//! A Pi 5 has several cards whose numbers vary from boot to boot (v3d: render
//! only, no dumb buffers; RP1 DSI; vc4 HDMI), so without `display.card` every
//! card is probed and the first one with dumb buffers and a connected
//! connector wins.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::parse_mode;

/// One display mode of a connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeInfo {
    pub width: u32,
    pub height: u32,
    pub refresh: u32,
    /// The screen's own preferred mode (EDID).
    pub preferred: bool,
}

impl fmt::Display for ModeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.refresh)
    }
}

/// One connector as the kernel names it (`HDMI-A-1`, `DSI-1`, `Virtual-1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorInfo {
    pub name: String,
    pub connected: bool,
    pub modes: Vec<ModeInfo>,
}

/// What a card offers for scan-out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInfo {
    pub path: PathBuf,
    /// Kernel driver (`vc4`, `v3d`, `drm-rp1-dsi`, `bochs`).
    pub driver: String,
    /// `DRM_CAP_DUMB_BUFFER`: render-only GPUs (v3d) have none and cannot scan out.
    pub dumb_buffers: bool,
    pub connectors: Vec<ConnectorInfo>,
}

/// The DRM queries the selection needs. Real: [`super::SysProbe`]; tests: fakes.
pub trait DrmProbe {
    /// Card device nodes, in the order to try them.
    fn cards(&self) -> Vec<PathBuf>;
    /// Opens one card and reads its driver, capabilities and connectors.
    fn probe(&self, card: &Path) -> io::Result<CardInfo>;
}

/// What `display.card`, `display.connector` and `display.mode` ask for ("" = any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub card: String,
    pub connector: String,
    pub mode: String,
}

/// The card, connector and mode to drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub card: PathBuf,
    pub driver: String,
    pub connector: String,
    pub mode: ModeInfo,
}

/// Why no card could be used; `Display` lists what was found on every card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoScreen {
    /// One line per card tried: its path and why it was passed over.
    pub reasons: Vec<String>,
    /// Some card could not be opened for lack of permission.
    pub permission_denied: bool,
    /// A card with that connector exists but the asked mode is not among its modes.
    pub bad_mode: bool,
}

impl fmt::Display for NoScreen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() {
            write!(f, "no DRM card found (no /dev/dri/card*; on a Pi: dtoverlay=vc4-kms-v3d in config.txt)")?;
        } else {
            write!(f, "no usable screen: {}", self.reasons.join("; "))?;
        }
        if self.permission_denied {
            write!(
                f,
                " (permission denied: the user must be in the `video` and `render` groups: \
                 sudo usermod -aG video,render USER, or SupplementaryGroups=video render in the unit)"
            )?;
        }
        Ok(())
    }
}

/// `"card1"` and `"/dev/dri/card1"` name the same node.
pub fn card_path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("/dev/dri").join(name)
    }
}

/// Picks the card, connector and mode, or says why none fits.
pub fn select(probe: &dyn DrmProbe, want: &Wanted) -> Result<Choice, NoScreen> {
    let cards = if want.card.is_empty() {
        probe.cards()
    } else {
        vec![card_path(&want.card)]
    };
    let mut no = NoScreen {
        reasons: vec![],
        permission_denied: false,
        bad_mode: false,
    };
    for path in cards {
        let info = match probe.probe(&path) {
            Ok(info) => info,
            Err(e) => {
                no.permission_denied |= e.kind() == io::ErrorKind::PermissionDenied;
                no.reasons
                    .push(format!("{}: cannot open ({e})", path.display()));
                continue;
            }
        };
        match pick_on_card(&info, want) {
            Ok(choice) => return Ok(choice),
            Err((reason, bad_mode)) => {
                no.bad_mode |= bad_mode;
                no.reasons
                    .push(format!("{} ({}): {reason}", path.display(), info.driver));
            }
        }
    }
    Err(no)
}

/// The connector and mode on one card, or (why not, whether the mode was the problem).
fn pick_on_card(card: &CardInfo, want: &Wanted) -> Result<Choice, (String, bool)> {
    if !card.dumb_buffers {
        return Err((
            "no dumb buffers (a render-only GPU), cannot show pictures".into(),
            false,
        ));
    }
    let found = || {
        if card.connectors.is_empty() {
            "no connectors".to_string()
        } else {
            let all: Vec<String> = card
                .connectors
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        c.name,
                        if c.connected {
                            "connected"
                        } else {
                            "disconnected"
                        }
                    )
                })
                .collect();
            format!("connectors: {}", all.join(", "))
        }
    };
    let conn = if want.connector.is_empty() {
        card.connectors
            .iter()
            .find(|c| c.connected && !c.modes.is_empty())
            .ok_or_else(|| (format!("no connected screen ({})", found()), false))?
    } else {
        let c = card
            .connectors
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&want.connector))
            .ok_or_else(|| {
                (
                    format!("no connector {} ({})", want.connector, found()),
                    false,
                )
            })?;
        if !c.connected || c.modes.is_empty() {
            return Err((
                format!("{} has no screen connected ({})", c.name, found()),
                false,
            ));
        }
        c
    };
    let mode = pick_mode(&conn.modes, &want.mode).ok_or_else(|| {
        let modes: Vec<String> = conn.modes.iter().map(|m| m.to_string()).collect();
        (
            format!(
                "{} has no mode {} (modes: {})",
                conn.name,
                want.mode,
                modes.join(", ")
            ),
            true,
        )
    })?;
    Ok(Choice {
        card: card.path.clone(),
        driver: card.driver.clone(),
        connector: conn.name.clone(),
        mode,
    })
}

/// The asked mode (any refresh when none is given: the preferred one first,
/// then the highest), else the preferred mode, else the first listed.
pub fn pick_mode(modes: &[ModeInfo], want: &str) -> Option<ModeInfo> {
    if want.is_empty() {
        return modes
            .iter()
            .find(|m| m.preferred)
            .or(modes.first())
            .copied();
    }
    let (w, h, hz) = parse_mode(want)?;
    let mut fits: Vec<&ModeInfo> = modes
        .iter()
        .filter(|m| m.width == w && m.height == h && hz.is_none_or(|hz| m.refresh == hz))
        .collect();
    fits.sort_by_key(|m| (!m.preferred, std::cmp::Reverse(m.refresh)));
    fits.first().map(|m| **m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A machine's cards as the kernel would report them; a card mapped to an
    /// error kind fails to open.
    struct FakeProbe {
        order: Vec<PathBuf>,
        cards: HashMap<PathBuf, Result<CardInfo, io::ErrorKind>>,
    }

    impl FakeProbe {
        fn new(cards: Vec<Result<CardInfo, (&str, io::ErrorKind)>>) -> Self {
            let mut order = vec![];
            let mut map = HashMap::new();
            for c in cards {
                let (path, v) = match c {
                    Ok(info) => (info.path.clone(), Ok(info)),
                    Err((p, kind)) => (PathBuf::from(p), Err(kind)),
                };
                order.push(path.clone());
                map.insert(path, v);
            }
            FakeProbe { order, cards: map }
        }
    }

    impl DrmProbe for FakeProbe {
        fn cards(&self) -> Vec<PathBuf> {
            self.order.clone()
        }
        fn probe(&self, card: &Path) -> io::Result<CardInfo> {
            match self.cards.get(card) {
                Some(Ok(info)) => Ok(info.clone()),
                Some(Err(kind)) => Err(io::Error::from(*kind)),
                None => Err(io::Error::from(io::ErrorKind::NotFound)),
            }
        }
    }

    fn mode(w: u32, h: u32, hz: u32, preferred: bool) -> ModeInfo {
        ModeInfo {
            width: w,
            height: h,
            refresh: hz,
            preferred,
        }
    }

    fn conn(name: &str, connected: bool) -> ConnectorInfo {
        ConnectorInfo {
            name: name.into(),
            connected,
            modes: if connected {
                vec![
                    mode(1280, 720, 60, false),
                    mode(1920, 1080, 50, false),
                    mode(1920, 1080, 60, true),
                    mode(1920, 1080, 30, false),
                ]
            } else {
                vec![]
            },
        }
    }

    fn card(n: u32, driver: &str, dumb: bool, connectors: Vec<ConnectorInfo>) -> CardInfo {
        CardInfo {
            path: PathBuf::from(format!("/dev/dri/card{n}")),
            driver: driver.into(),
            dumb_buffers: dumb,
            connectors,
        }
    }

    /// A Pi 5 with a screen on the second HDMI port: v3d (render only), the
    /// RP1 DSI card with nothing attached, then vc4.
    fn pi5() -> FakeProbe {
        FakeProbe::new(vec![
            Ok(card(0, "v3d", false, vec![])),
            Ok(card(1, "drm-rp1-dsi", true, vec![conn("DSI-1", false)])),
            Ok(card(
                2,
                "vc4",
                true,
                vec![conn("HDMI-A-1", false), conn("HDMI-A-2", true)],
            )),
        ])
    }

    #[test]
    fn probing_skips_render_only_and_unconnected_cards() {
        let c = select(&pi5(), &Wanted::default()).unwrap();
        assert_eq!(c.card, PathBuf::from("/dev/dri/card2"));
        assert_eq!(c.driver, "vc4");
        assert_eq!(c.connector, "HDMI-A-2");
        assert_eq!(c.mode, mode(1920, 1080, 60, true), "the preferred mode");
    }

    #[test]
    fn card_numbers_do_not_matter_only_what_the_cards_offer() {
        // The same Pi 5 after a boot where vc4 came up first.
        let p = FakeProbe::new(vec![
            Ok(card(0, "vc4", true, vec![conn("HDMI-A-1", true)])),
            Ok(card(1, "v3d", false, vec![])),
        ]);
        let c = select(&p, &Wanted::default()).unwrap();
        assert_eq!(
            (c.card.to_str().unwrap(), c.driver.as_str()),
            ("/dev/dri/card0", "vc4")
        );
    }

    #[test]
    fn configured_card_and_connector_are_used() {
        let p = FakeProbe::new(vec![Ok(card(
            0,
            "vc4",
            true,
            vec![conn("HDMI-A-1", true), conn("HDMI-A-2", true)],
        ))]);
        let want = Wanted {
            card: "card0".into(),
            connector: "hdmi-a-2".into(),
            mode: String::new(),
        };
        let c = select(&p, &want).unwrap();
        assert_eq!(c.connector, "HDMI-A-2");
        let want = Wanted {
            card: "/dev/dri/card0".into(),
            ..Wanted::default()
        };
        assert_eq!(select(&p, &want).unwrap().connector, "HDMI-A-1");
    }

    #[test]
    fn a_configured_card_is_the_only_one_tried() {
        let want = Wanted {
            card: "card1".into(),
            ..Wanted::default()
        };
        let e = select(&pi5(), &want).unwrap_err();
        assert_eq!(e.reasons.len(), 1, "{e}");
        assert!(
            e.to_string().contains("/dev/dri/card1 (drm-rp1-dsi)"),
            "{e}"
        );
        assert!(e.to_string().contains("DSI-1 disconnected"), "{e}");
    }

    #[test]
    fn no_connected_screen_names_every_connector_found() {
        let p = FakeProbe::new(vec![
            Ok(card(0, "v3d", false, vec![])),
            Ok(card(
                1,
                "vc4",
                true,
                vec![conn("HDMI-A-1", false), conn("HDMI-A-2", false)],
            )),
        ]);
        let e = select(&p, &Wanted::default()).unwrap_err().to_string();
        assert!(e.contains("no connected screen"), "{e}");
        assert!(
            e.contains("HDMI-A-1 disconnected, HDMI-A-2 disconnected"),
            "{e}"
        );
        assert!(e.contains("/dev/dri/card0 (v3d): no dumb buffers"), "{e}");
    }

    #[test]
    fn a_configured_connector_without_a_screen_is_an_error_not_another_connector() {
        let want = Wanted {
            connector: "HDMI-A-1".into(),
            ..Wanted::default()
        };
        let e = select(&pi5(), &want).unwrap_err().to_string();
        assert!(e.contains("HDMI-A-1 has no screen connected"), "{e}");
        let want = Wanted {
            connector: "DP-1".into(),
            ..Wanted::default()
        };
        let e = select(&pi5(), &want).unwrap_err().to_string();
        assert!(
            e.contains("no connector DP-1 (connectors: HDMI-A-1 disconnected, HDMI-A-2 connected)"),
            "{e}"
        );
    }

    #[test]
    fn permission_denied_names_the_groups() {
        let p = FakeProbe::new(vec![
            Err(("/dev/dri/card0", io::ErrorKind::PermissionDenied)),
            Err(("/dev/dri/card1", io::ErrorKind::PermissionDenied)),
        ]);
        let e = select(&p, &Wanted::default()).unwrap_err();
        assert!(e.permission_denied);
        let s = e.to_string();
        assert!(s.contains("/dev/dri/card0: cannot open"), "{s}");
        assert!(s.contains("`video` and `render` groups"), "{s}");
    }

    #[test]
    fn no_cards_at_all_says_how_to_get_one() {
        let e = select(&FakeProbe::new(vec![]), &Wanted::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("vc4-kms-v3d"), "{e}");
    }

    #[test]
    fn asked_mode_with_and_without_refresh() {
        let modes = conn("HDMI-A-1", true).modes;
        assert_eq!(
            pick_mode(&modes, "1280x720"),
            Some(mode(1280, 720, 60, false))
        );
        // Without a rate: the preferred one of that size.
        assert_eq!(
            pick_mode(&modes, "1920x1080"),
            Some(mode(1920, 1080, 60, true))
        );
        assert_eq!(
            pick_mode(&modes, "1920x1080@50"),
            Some(mode(1920, 1080, 50, false))
        );
        assert_eq!(pick_mode(&modes, "800x600"), None);
        // Without a preferred flag the highest rate of that size wins.
        let plain: Vec<ModeInfo> = modes
            .iter()
            .map(|m| ModeInfo {
                preferred: false,
                ..*m
            })
            .collect();
        assert_eq!(
            pick_mode(&plain, "1920x1080"),
            Some(mode(1920, 1080, 60, false))
        );
        assert_eq!(
            pick_mode(&plain, ""),
            Some(mode(1280, 720, 60, false)),
            "first listed"
        );
    }

    #[test]
    fn a_mode_the_screen_lacks_lists_the_modes_it_has() {
        let want = Wanted {
            mode: "3840x2160".into(),
            ..Wanted::default()
        };
        let e = select(&pi5(), &want).unwrap_err();
        assert!(e.bad_mode);
        let s = e.to_string();
        assert!(s.contains("HDMI-A-2 has no mode 3840x2160"), "{s}");
        assert!(s.contains("1920x1080@60"), "{s}");
    }
}
