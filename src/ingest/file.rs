//! NDJSON files (plain or gzip) through the same path as Kafka: for backfills.
//!
//! A file may mix signals and outcomes. Re-running a file is harmless: every record is already
//! in the lake and counts as a duplicate.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Expect, IngestError, Ingestor, Origin};

/// Counts the bytes read from the file itself (compressed bytes for `.gz`), for the progress
/// bar.
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Opens an NDJSON file, gunzipping `.gz`, counting raw bytes on `bar`.
pub fn open(path: &Path, bar: &indicatif::ProgressBar) -> Result<Box<dyn BufRead>, IngestError> {
    let read_err = |source| IngestError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let counting = Counting {
        inner: file,
        bar: bar.clone(),
    };
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(counting))
    } else {
        Box::new(counting)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

/// Calls `f` with each non-blank line (without its line ending) and its 1-based number.
pub fn for_each_line(
    path: &Path,
    reader: &mut dyn BufRead,
    mut f: impl FnMut(&[u8], u64) -> Result<(), IngestError>,
) -> Result<u64, IngestError> {
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| IngestError::Read {
                path: format!("{} after line {number}", path.display()),
                source,
            })?;
        if n == 0 {
            return Ok(number);
        }
        number += 1;
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(bytes, number)?;
    }
}

/// Ingests NDJSON files, flushing to the lake every `batch` records.
pub fn ingest_files(
    ingestor: &mut Ingestor<'_>,
    paths: &[impl AsRef<Path>],
    batch: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(), IngestError> {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p.as_ref()).ok())
        .map(|m| m.len())
        .sum();
    bar.set_length(total);
    for path in paths {
        let path = path.as_ref();
        let mut reader = open(path, bar)?;
        let name = path.display().to_string();
        let lines = for_each_line(path, reader.as_mut(), |bytes, line| {
            ingestor.process(
                bytes,
                || Origin::File {
                    file: name.clone(),
                    line,
                },
                Expect::Any,
            )?;
            if ingestor.buffered() >= batch {
                ingestor.flush()?;
            }
            Ok(())
        })?;
        tracing::debug!(file = %name, lines, "file read");
    }
    ingestor.flush()?;
    Ok(())
}
