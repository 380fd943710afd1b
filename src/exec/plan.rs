//! What a compiled model runs, in which order, and which buffer holds each value.

use crate::graph::{NodeId, Source};
use crate::nn::TrainGraph;
use crate::ops::{Op, Relu};

/// The op nodes to evaluate: the forward pass (up to the loss, the logits
/// and the kept feature maps) and, after it, the backward pass.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub forward: Vec<NodeId>,
    pub backward: Vec<NodeId>,
}

impl Schedule {
    pub fn new(model: &TrainGraph) -> Self {
        let g = &model.graph;
        let mut needed = vec![false; g.nodes.len()];
        let mut stack: Vec<NodeId> = [model.loss, model.logits].into_iter().collect();
        stack.extend(model.features.iter().map(|(_, id)| *id));
        stack.extend(model.grads.iter().map(|(_, grad)| *grad));
        while let Some(id) = stack.pop() {
            if !needed[id] {
                needed[id] = true;
                stack.extend(&g.nodes[id].inputs);
            }
        }
        let is_op = |id: &NodeId| matches!(g.nodes[*id].source, Source::Op(_)) && needed[*id];
        Schedule {
            forward: (0..=model.loss).filter(is_op).collect(),
            backward: (model.loss + 1..g.nodes.len()).filter(is_op).collect(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.forward.iter().chain(&self.backward).copied()
    }
}

/// Computed values read after a step: the loss, the logits, the kept feature maps, the gradients.
fn read_after_step(model: &TrainGraph) -> Vec<NodeId> {
    let outputs = [model.loss, model.logits].into_iter().chain(model.features.iter().map(|f| f.1));
    outputs.chain(model.grads.iter().map(|&(_, grad)| grad)).collect()
}

/// ReLUs the op before them can compute as it writes: `fused[relu] = Some(producer)`
/// where `can_absorb(producer's op, its input shapes, its shape)`, the ReLU is the producer's only reader
/// and the producer's value is not kept (a feature map, the logits, …).
/// The producer then writes the ReLU's value into the slot they share.
pub fn relu_fusions(
    model: &TrainGraph,
    schedule: &Schedule,
    can_absorb: impl Fn(&Op, &[&[usize]], &[usize]) -> bool,
) -> Vec<Option<NodeId>> {
    let g = &model.graph;
    let mut readers = vec![0usize; g.nodes.len()];
    for id in schedule.all() {
        for &input in &g.nodes[id].inputs {
            readers[input] += 1;
        }
    }
    let kept = read_after_step(model);
    let mut fused = vec![None; g.nodes.len()];
    for id in schedule.all() {
        let node = &g.nodes[id];
        if node.source != Source::Op(Op::Relu(Relu)) {
            continue;
        }
        let producer_id = node.inputs[0];
        let producer = &g.nodes[producer_id];
        if let Source::Op(op) = &producer.source {
            let inputs: Vec<&[usize]> = producer.inputs.iter().map(|&i| g.shape(i)).collect();
            let only_the_relu_reads_it = readers[producer_id] == 1 && !kept.contains(&producer_id);
            if only_the_relu_reads_it && can_absorb(op, &inputs, &producer.shape) {
                fused[id] = Some(producer_id);
            }
        }
    }
    fused
}

/// Which buffer ("slot") holds each node, and each slot's length in f32.
///
/// Values that outlive a step (inputs, parameters, gradients, the loss, the
/// logits, kept feature maps) get slots of their own. Every other value
/// takes a free slot when it is computed and frees it after its last reader,
/// so intermediate buffers are reused. A reshape shares its input's slot, and
/// so does a ReLU fused into its input's op (`relu_fusions`).
#[derive(Clone, Debug)]
pub struct BufferPlan {
    pub slot_of: Vec<Option<usize>>,
    pub slot_len: Vec<usize>,
}

impl BufferPlan {
    pub fn new(model: &TrainGraph, schedule: &Schedule, fused: &[Option<NodeId>]) -> Self {
        let g = &model.graph;
        let n = g.nodes.len();
        // A reshape is a view: follow it to the node that owns the data.
        let mut owner: Vec<NodeId> = (0..n).collect();
        for id in 0..n {
            let is_view = matches!(g.nodes[id].source, Source::Op(Op::Reshape(_))) || fused[id].is_some();
            if is_view {
                owner[id] = owner[g.nodes[id].inputs[0]];
            }
        }
        let order: Vec<NodeId> = schedule.all().collect();
        let mut keep = vec![false; n];
        for (id, node) in g.nodes.iter().enumerate() {
            keep[id] = !matches!(node.source, Source::Op(_));
        }
        for id in read_after_step(model) {
            keep[owner[id]] = true;
        }
        let mut last_use = vec![None; n];
        for (step, &id) in order.iter().enumerate() {
            for &input in &g.nodes[id].inputs {
                last_use[owner[input]] = Some(step);
            }
        }

        let mut plan = BufferPlan { slot_of: vec![None; n], slot_len: Vec::new() };
        let len = |id: NodeId| g.nodes[id].shape.iter().product::<usize>();
        for id in (0..n).filter(|&id| keep[id] && !matches!(g.nodes[id].source, Source::Op(_))) {
            plan.slot_of[id] = Some(plan.new_slot(len(id)));
        }
        let mut free: Vec<usize> = Vec::new();
        for (step, &id) in order.iter().enumerate() {
            if owner[id] != id {
                plan.slot_of[id] = plan.slot_of[owner[id]];
                continue;
            }
            let slot = if keep[id] { plan.new_slot(len(id)) } else { plan.reuse_slot(&mut free, len(id)) };
            plan.slot_of[id] = Some(slot);
            // Free what this step read for the last time (after allocating, so
            // an op never writes the buffer it reads), and an unread result.
            let mut done: Vec<NodeId> = g.nodes[id].inputs.iter().map(|&i| owner[i]).collect();
            done.push(id);
            done.sort_unstable();
            done.dedup();
            for d in done {
                let unread = d == id && last_use[d].is_none();
                if !keep[d] && (last_use[d] == Some(step) || unread) {
                    free.extend(plan.slot_of[d]);
                }
            }
        }
        plan
    }

    fn new_slot(&mut self, len: usize) -> usize {
        self.slot_len.push(len.max(1));
        self.slot_len.len() - 1
    }

    /// The smallest free slot that holds `len` values, else the largest one
    /// grown to `len`, else a new slot.
    fn reuse_slot(&mut self, free: &mut Vec<usize>, len: usize) -> usize {
        let fits =
            free.iter().enumerate().filter(|(_, &s)| self.slot_len[s] >= len).min_by_key(|(_, &s)| self.slot_len[s]);
        let pick = fits.or_else(|| free.iter().enumerate().max_by_key(|(_, &s)| self.slot_len[s])).map(|(i, _)| i);
        match pick {
            Some(i) => {
                let slot = free.swap_remove(i);
                self.slot_len[slot] = self.slot_len[slot].max(len);
                slot
            }
            None => self.new_slot(len),
        }
    }

    /// Total bytes of all slots.
    pub fn bytes(&self) -> usize {
        self.slot_len.iter().sum::<usize>() * 4
    }
}
