//! The integration tests, one binary: each module links the whole app (and tract), so
//! one binary links it once instead of once per file (a cold CI build was ~17 min with 19).
//! Binaries of their own: tests driven by scripts in a VM or a real systemd
//! (capture_camera, input_gpio_sim, display_xvfb, notify_standin), and tests that
//! raise signals at their own process or set environment variables other tests read
//! (input_signals, notify_socket, display_auto, display_window).

mod common;

mod bad_input;
mod capture_libcamera;
mod capture_sources;
mod cli;
mod config_file;
mod daemon;
mod daemon_process;
mod display_framebuffer;
mod display_headless;
mod faults;
mod faults_args;
mod faults_files;
mod faults_pictures;
mod models_fetch;
mod mqtt;
mod reference;
mod remote;
