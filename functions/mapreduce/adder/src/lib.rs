//! The distributed adder, pure: an array of integers is doubled element by element (map) and
//! summed (reduce), exactly, whatever the delivery does. No I/O here; the functions' host does it.
//!
//! How the work moves, and why nothing is counted twice or lost:
//! - the API splits an array into chunks ([`chunk_count`]); each chunk is one map task;
//! - a map task's result is the partial sum at node `(0, chunk)` of a reduction [`Tree`];
//! - a reduce task for node `(level, index)` reads the node's children at `level - 1`; once all
//!   are there it writes their [`combine`]d value, then asks for its parent, up to the root, whose
//!   value is the array's sum;
//! - every node's value is a function of its children's values only, and each node is written
//!   once (a conditional put): a repeated task, a redelivered message or two reducers on the same
//!   node write the same value once. A task whose node exists goes on to its next step, so a crash
//!   between a write and the message after it is repaired by the redelivery.

pub mod interface;
pub mod parse;

pub use parse::{parse_array, Rejection, MAX_ELEMENTS, MAX_MAGNITUDE};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The reduction tree of one array: `chunks` leaves, each node combining up to `fan_in` nodes of
/// the level below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub chunks: u32,
    pub fan_in: u32,
}

impl Tree {
    /// The tree over `elements` elements in chunks of `chunk_size`, combining `fan_in` at a time.
    pub fn new(elements: usize, chunk_size: usize, fan_in: u32) -> Self {
        Self { chunks: chunk_count(elements, chunk_size), fan_in: fan_in.max(2) }
    }

    /// How many nodes `level` has (level 0: one per chunk).
    pub fn nodes_at(&self, level: u32) -> u32 {
        let mut nodes = self.chunks.max(1);
        for _ in 0..level {
            nodes = nodes.div_ceil(self.fan_in);
        }
        nodes
    }

    /// The level of the single node that holds the whole sum.
    pub fn root_level(&self) -> u32 {
        let mut level = 0;
        while self.nodes_at(level) > 1 {
            level += 1;
        }
        level
    }

    /// The node that combines `(level, index)`.
    pub fn parent(&self, level: u32, index: u32) -> (u32, u32) {
        (level + 1, index / self.fan_in)
    }

    /// The indexes, at `level - 1`, of the children of `(level, index)` (level > 0).
    pub fn children(&self, level: u32, index: u32) -> Range<u32> {
        let below = self.nodes_at(level - 1);
        (index * self.fan_in).min(below)..((index + 1) * self.fan_in).min(below)
    }
}

/// How many chunks of `chunk_size` hold `elements` elements.
pub fn chunk_count(elements: usize, chunk_size: usize) -> u32 {
    elements.div_ceil(chunk_size.max(1)) as u32
}

/// The scratchpad's sort key of node `(level, index)`: fixed width, so a level's nodes sort in
/// index order and a range of children is one key range.
pub fn node_key(level: u32, index: u32) -> String {
    format!("{level:02}#{index:08}")
}

/// What a message on the map or reduce queue asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Double and sum chunk `chunk` of array `array_id`: the value of node `(0, chunk)`.
    Map { array_id: String, chunk: u32, tree: Tree, elements: Vec<i64> },
    /// Combine the children of node `(level, index)` once they are all there.
    Reduce { array_id: String, level: u32, index: u32, tree: Tree },
    /// A message that could never be processed, sent to the dead-letter queue by the function
    /// that read it, with why.
    Unprocessable { array_id: Option<String>, reason: String },
}

impl Task {
    /// The array the task belongs to, where it names one.
    pub fn array_id(&self) -> Option<&str> {
        match self {
            Task::Map { array_id, .. } | Task::Reduce { array_id, .. } => Some(array_id),
            Task::Unprocessable { array_id, .. } => array_id.as_deref(),
        }
    }

    /// Checks what a well-formed message can still get wrong: elements out of range, a chunk or
    /// node outside its tree. Says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Task::Map { chunk, tree, elements, .. } => {
                if *chunk >= tree.chunks {
                    return Err(format!("chunk {chunk} is outside the array's {} chunks", tree.chunks));
                }
                match elements.iter().position(|x| x.abs() > MAX_MAGNITUDE) {
                    Some(at) => Err(format!("element {at} of chunk {chunk} is {}: out of range", elements[at])),
                    None => Ok(()),
                }
            }
            Task::Reduce { level, index, tree, .. } => {
                if *level == 0 || *level > tree.root_level() || *index >= tree.nodes_at(*level) {
                    return Err(format!("node ({level}, {index}) is not a reduce node of its tree"));
                }
                Ok(())
            }
            Task::Unprocessable { .. } => Ok(()),
        }
    }
}

/// The map step: every element doubled, summed. With at most [`MAX_ELEMENTS`] elements of at
/// most [`MAX_MAGNITUDE`], the sum stays below 2^51: an `i64` holds it exactly.
pub fn double_and_sum(elements: &[i64]) -> i64 {
    elements.iter().map(|x| 2 * x).sum()
}

/// The reduce step: partial sums combined.
pub fn combine(partials: &[i64]) -> i64 {
    partials.iter().sum()
}

/// Where an array stands, as `GET /arrays/{arrayId}` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending { count: u64, done: u64 },
    Done { count: u64, sum: i64 },
    Failed { reason: String },
}

impl Status {
    /// The JSON body of the answer.
    pub fn body(&self, array_id: &str) -> serde_json::Value {
        match self {
            Status::Pending { count, done } => {
                serde_json::json!({ "arrayId": array_id, "status": "pending", "count": count, "done": done })
            }
            Status::Done { count, sum } => {
                serde_json::json!({ "arrayId": array_id, "status": "done", "count": count, "sum": sum })
            }
            Status::Failed { reason } => {
                serde_json::json!({ "arrayId": array_id, "status": "failed", "reason": reason })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reduces `values` (one per chunk) up the tree, level by level, as the reducers do.
    fn reduce_up(tree: &Tree, values: &[i64]) -> i64 {
        let mut level_values = values.to_vec();
        for level in 1..=tree.root_level() {
            level_values = (0..tree.nodes_at(level))
                .map(|index| {
                    let children = tree.children(level, index);
                    combine(&level_values[children.start as usize..children.end as usize])
                })
                .collect();
        }
        assert_eq!(level_values.len(), 1);
        level_values[0]
    }

    #[test]
    fn every_chunk_reaches_the_root_exactly_once() {
        for (chunks, fan_in) in [(1, 16), (2, 2), (16, 16), (17, 16), (50, 4), (1000, 16), (4097, 16)] {
            let tree = Tree { chunks, fan_in };
            let values: Vec<i64> = (0..chunks as i64).map(|i| i * 7 - 3).collect();
            assert_eq!(reduce_up(&tree, &values), values.iter().sum::<i64>(), "{tree:?}");
            for level in 1..=tree.root_level() {
                let covered: u32 = (0..tree.nodes_at(level)).map(|i| tree.children(level, i).len() as u32).sum();
                assert_eq!(covered, tree.nodes_at(level - 1), "{tree:?} level {level}: each child has one parent");
                for index in 0..tree.nodes_at(level) {
                    for child in tree.children(level, index) {
                        assert_eq!(tree.parent(level - 1, child), (level, index));
                    }
                }
            }
            assert_eq!(tree.nodes_at(tree.root_level()), 1);
        }
    }

    #[test]
    fn trees_are_shallow() {
        assert_eq!(Tree::new(10_000, 2000, 16).root_level(), 1, "5 chunks: one reduce");
        assert_eq!(Tree::new(100_000, 2000, 16).root_level(), 2, "50 chunks: two levels");
        assert_eq!(Tree::new(500_000, 2000, 16).root_level(), 2, "250 chunks");
        assert_eq!(Tree::new(1, 2000, 16).root_level(), 0, "one chunk is its own root");
    }

    #[test]
    fn node_keys_sort_by_level_then_index() {
        let mut keys = vec![node_key(1, 0), node_key(0, 10), node_key(0, 9), node_key(0, 100)];
        keys.sort();
        assert_eq!(keys, [node_key(0, 9), node_key(0, 10), node_key(0, 100), node_key(1, 0)]);
    }

    #[test]
    fn the_largest_array_sums_exactly_in_an_i64() {
        let elements = vec![MAX_MAGNITUDE; MAX_ELEMENTS];
        assert_eq!(double_and_sum(&elements) as i128, 2 * MAX_MAGNITUDE as i128 * MAX_ELEMENTS as i128);
        let negative = vec![-MAX_MAGNITUDE; MAX_ELEMENTS];
        assert_eq!(double_and_sum(&negative), -double_and_sum(&elements));
    }

    #[test]
    fn tasks_round_trip_and_out_of_tree_ones_are_refused() {
        let tree = Tree { chunks: 5, fan_in: 2 };
        let map = Task::Map { array_id: "a".into(), chunk: 4, tree, elements: vec![1, -2] };
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), map);
        assert!(map.check().is_ok());
        assert!(Task::Map { array_id: "a".into(), chunk: 5, tree, elements: vec![] }.check().is_err());
        let big = Task::Map { array_id: "a".into(), chunk: 0, tree, elements: vec![MAX_MAGNITUDE + 1] };
        assert!(big.check().unwrap_err().contains("out of range"));
        assert!(Task::Reduce { array_id: "a".into(), level: 1, index: 2, tree }.check().is_ok());
        assert!(Task::Reduce { array_id: "a".into(), level: 1, index: 3, tree }.check().is_err());
        assert!(Task::Reduce { array_id: "a".into(), level: 0, index: 0, tree }.check().is_err());
    }

    #[test]
    fn statuses_answer_as_documented() {
        assert_eq!(
            Status::Done { count: 3, sum: 12 }.body("x"),
            serde_json::json!({"arrayId": "x", "status": "done", "count": 3, "sum": 12})
        );
        assert_eq!(Status::Pending { count: 3, done: 1 }.body("x")["done"], 1);
        assert_eq!(Status::Failed { reason: "r".into() }.body("x")["status"], "failed");
    }
}
