//! styleframe's command line. Everything lives in the library and `cli/`;
//! this only hands over and turns the outcome into an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
