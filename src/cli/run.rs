use clap::Args;
use super::CliResult;
#[derive(Args)]
pub struct RunArgs {}
#[derive(Args)]
pub struct DemoArgs {}
pub fn run(_a: RunArgs) -> CliResult { Err(anyhow::anyhow!("todo").into()) }
pub fn demo(_a: DemoArgs) -> CliResult { Err(anyhow::anyhow!("todo").into()) }
