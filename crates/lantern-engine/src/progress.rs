//! Progress bars for long jobs, in one style across the tool.
//!
//! Bars draw on stderr and only when it is a terminal, so logs piped to a file or a CI run stay
//! clean; `LANTERN_NO_PROGRESS=1` hides them on a terminal too.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `len` items, labelled with what is being counted.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40.cyan/blue}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .expect("static progress template is valid")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A bar counting bytes, for file reads.
pub fn bytes_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40.cyan/blue}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .expect("static progress template is valid")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn target() -> ProgressDrawTarget {
    if std::env::var_os("LANTERN_NO_PROGRESS").is_some() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}
