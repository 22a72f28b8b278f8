//! `mapreduce-program`: answers provision's request with the distributed adder's declaration.

fn main() {
    declaration::run(mapreduce_program::declare_stack);
}
