//! systemd notify/watchdog protocol. (being written)
