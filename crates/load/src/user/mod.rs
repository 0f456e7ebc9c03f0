//! User mode: each virtual user signs in, reads who it is, then follows weighted flows until
//! the run ends.

pub mod execute;
mod flows;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{Session, Stopped, Target};
use execute::{Runtime, Script};

/// The flows and their weights (of the original tool: execution ×5, history ×2, saved
/// scripts ×2, settings and notifications ×2).
#[derive(Debug, Clone, Copy)]
enum Flow {
    Execute,
    History,
    SavedScripts,
    Settings,
}

const FLOWS: [(Flow, u32); 4] = [
    (Flow::Execute, 5),
    (Flow::History, 2),
    (Flow::SavedScripts, 2),
    (Flow::Settings, 2),
];

fn pick(rng: &mut impl Rng) -> Flow {
    let total: u32 = FLOWS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (flow, weight) in FLOWS {
        if roll < weight {
            return flow;
        }
        roll -= weight;
    }
    Flow::Execute
}

/// Runs one virtual user until the run ends.
pub async fn run(target: Arc<Target>, session: Session, runtime: Arc<Runtime>) {
    let _ = drive(&target, &session, &runtime).await;
}

async fn drive(target: &Target, session: &Session, runtime: &Runtime) -> Result<(), Stopped> {
    let mut rng = StdRng::from_entropy();
    flows::me(target, session).await?;
    loop {
        match pick(&mut rng) {
            Flow::Execute => {
                let script = Script::random(&mut rng);
                // Six in ten follow the result over the event stream, the others poll.
                let stream = rng.gen_bool(0.6);
                execute::run(target, session, runtime, &script, stream).await?;
            }
            Flow::History => flows::history(target, session, &mut rng).await?,
            Flow::SavedScripts => flows::saved_scripts(target, session, runtime, &mut rng).await?,
            Flow::Settings => flows::settings_and_notifications(target, session, &mut rng).await?,
        }
        if rng.gen_bool(0.1) {
            flows::me(target, session).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_picked_by_weight() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..11_000 {
            counts[pick(&mut rng) as usize] += 1;
        }
        // Expected 5000, 2000, 2000, 2000; allow wide sampling noise.
        assert!((4600..5400).contains(&counts[0]), "{counts:?}");
        for c in &counts[1..] {
            assert!((1700..2300).contains(c), "{counts:?}");
        }
    }
}
