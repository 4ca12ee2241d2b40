//! Memory areas that are not plain anonymous memory: saved data behind PROT_NONE, mappings
//! that cannot be read as recorded, large reservations and the kernel's flags of an area, and
//! shared memory between processes. Real programs (tests/c), 64 and 32 bits, through
//! checkpoint/kill/restart cycles compared with an uninterrupted run.
use crate::ckpt::*;
use crate::util::*;
use std::time::Duration;

/// emacs's dump file: a private file mapping relocated in place (one page zeroed over nonzero
/// file bytes), then protected PROT_NONE, and an anonymous area with data behind PROT_NONE. The
/// restorer used to read the saved pages into the PROT_NONE mapping (EFAULT, "image is
/// truncated").
fn prot_none_areas_with_saved_data(m32: bool) {
    let p = c_program("pnone_file_data", m32);
    cycles(&p, &["40"], 2, Duration::from_millis(900), &[]);
}

#[test]
fn prot_none_file_area_with_saved_data_restarts_64() {
    prot_none_areas_with_saved_data(false);
}

#[test]
fn prot_none_file_area_with_saved_data_restarts_32() {
    prot_none_areas_with_saved_data(true);
}

/// A file mapped longer than the file and a file truncated under a mapping (pages past the end
/// give SIGBUS), while a thread keeps calling dlopen/dlclose: the checkpoint used to fail with
/// "the image writer stopped reading: Bad address".
fn mapping_past_end_of_file(m32: bool) {
    let p = c_program("past_eof_map", m32);
    cycles(&p, &["40"], 2, Duration::from_millis(900), &[]);
}

#[test]
fn mapping_past_the_end_of_its_file_checkpoints_64() {
    mapping_past_end_of_file(false);
}

#[test]
fn mapping_past_the_end_of_its_file_checkpoints_32() {
    mapping_past_end_of_file(true);
}
