use clap::Args;
use super::CliResult;
#[derive(Args)]
pub struct BenchArgs {}
pub fn bench(_a: BenchArgs) -> CliResult { Err(anyhow::anyhow!("todo").into()) }
