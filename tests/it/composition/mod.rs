//! The layers composed with the rest of the tower ecosystem: the table of token stacks, and
//! hyper-util, `Buffer` and tower-http's layers used for real.

mod ecosystem;
mod shared_limit;
mod stacks;
