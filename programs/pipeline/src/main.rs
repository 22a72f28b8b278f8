//! `pipeline-program`: answers provision's request with the pipeline's declaration.

fn main() {
    declaration::run(pipeline_program::declare_stack);
}
