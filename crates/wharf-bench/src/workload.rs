//! The named workloads and the phases each one runs.

use crate::args::{BenchArgs, WorkloadChoice};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// Push everything into an empty queue; ends at the last push.
    Produce,
    /// Pull and ack what the produce phase left; ends at the N-th ack.
    Consume,
    /// Producers and consumers at once on an empty queue; ends at the N-th ack.
    Both,
    /// Push at a fixed offered rate while consuming; ends at the N-th ack.
    Paced,
}

impl PhaseKind {
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::Produce => "produce",
            PhaseKind::Consume => "consume",
            PhaseKind::Both => "both",
            PhaseKind::Paced => "paced",
        }
    }

    /// The tag bodies of this phase carry: the consume phase reads what the
    /// produce phase wrote.
    pub fn body_tag(self) -> u8 {
        match self {
            PhaseKind::Produce | PhaseKind::Consume => 1,
            PhaseKind::Both => 3,
            PhaseKind::Paced => 4,
        }
    }

    pub fn produces(self) -> bool {
        self != PhaseKind::Consume
    }

    pub fn consumes(self) -> bool {
        self != PhaseKind::Produce
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Workload {
    pub name: &'static str,
    pub messages: u64,
    pub push_batch: usize,
    pub pull_batch: usize,
    pub producers: usize,
    pub consumers: usize,
    /// Offered rate in messages per second, for paced workloads.
    pub rate: Option<u64>,
    pub phases: Vec<PhaseKind>,
}

fn scaled(count: u64, scale: f64) -> u64 {
    ((count as f64 * scale).round() as u64).max(1)
}

/// The workloads `args` selects, with counts overridden and scaled.
pub fn selected(args: &BenchArgs) -> Vec<Workload> {
    let throughput = [PhaseKind::Produce, PhaseKind::Consume, PhaseKind::Both];
    let w1 = Workload {
        name: "w1",
        messages: scaled(args.messages.unwrap_or(200_000), args.scale),
        push_batch: 100,
        pull_batch: 100,
        producers: 4,
        consumers: 4,
        rate: None,
        phases: throughput.to_vec(),
    };
    let w2 = Workload {
        name: "w2",
        messages: scaled(args.messages.unwrap_or(20_000), args.scale),
        push_batch: 1,
        pull_batch: 1,
        producers: args.connections.max(1),
        consumers: args.connections.max(1),
        rate: None,
        phases: throughput.to_vec(),
    };
    let rate = args.rate.max(1);
    let w3 = Workload {
        name: "w3",
        messages: args.messages.map_or_else(
            || scaled((rate as f64 * args.duration_secs).round() as u64, args.scale),
            |messages| scaled(messages, args.scale),
        ),
        push_batch: 1,
        pull_batch: 100,
        // Enough producers that one slow push does not delay the next send.
        producers: 8,
        consumers: 2,
        rate: Some(rate),
        phases: vec![PhaseKind::Paced],
    };
    match args.workload {
        WorkloadChoice::W1 => vec![w1],
        WorkloadChoice::W2 => vec![w2],
        WorkloadChoice::W3 => vec![w3],
        WorkloadChoice::All => vec![w1, w2, w3],
    }
}
