//! placeholder
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}
pub fn simulate(_: &SimulateArgs) -> anyhow::Result<()> {
    Ok(())
}
