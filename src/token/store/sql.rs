//! SQL stores (work in progress).
