//! todo
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}
