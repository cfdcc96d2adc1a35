use clap::Args;
use super::CliResult;
#[derive(Args)]
pub struct DoctorArgs {}
pub fn doctor(_a: DoctorArgs) -> CliResult { Err(anyhow::anyhow!("todo").into()) }
