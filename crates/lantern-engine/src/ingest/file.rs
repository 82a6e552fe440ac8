//! NDJSON files (plain or gzip) through the same path as Kafka: for backfills.
//!
//! A file may mix signals and outcomes. Re-running a file is harmless: every record is already
//! in the lake and counts as a duplicate.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Checked, Checker, Expect, IngestError, Ingestor, Origin};

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

/// A line without its ending (`\n` or `\r\n`), or `None` for a blank line, which NDJSON
/// readers skip.
fn content(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
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
            .map_err(|source| IngestError::reading(path, number, source))?;
        if n == 0 {
            return Ok(number);
        }
        number += 1;
        if let Some(bytes) = content(&line) {
            f(bytes, number)?;
        }
    }
}

/// Lines checked together: read, split across the cores, checked in parallel, then accepted in
/// file order.
const CHUNK_LINES: usize = 16_384;

/// Ingests NDJSON files, flushing to the lake every `batch` records.
///
/// A reader thread reads chunks of lines and checks them (decoding and validation, the costly
/// part) on all cores, while this thread writes the previous chunk: the lake writer and the
/// dead-letter sink see records in file order, so results do not depend on the number of cores.
pub fn ingest_files(
    ingestor: &mut Ingestor<'_>,
    paths: &[impl AsRef<Path> + Sync],
    batch: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(), IngestError> {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p.as_ref()).ok())
        .map(|m| m.len())
        .sum();
    bar.set_length(total);
    let checker = ingestor.checker();
    // Two chunks in flight: one being checked, one being written.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Chunk, IngestError>>(2);
    std::thread::scope(|scope| -> Result<(), IngestError> {
        let reader = scope.spawn(move || {
            for path in paths {
                if let Err(e) = read_and_check(path.as_ref(), &checker, bar, &tx) {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        });
        let mut result = Ok(());
        for chunk in rx {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            for (checked, line) in chunk.records {
                ingestor.accept(checked, || Origin::File {
                    file: chunk.file.to_string(),
                    line,
                })?;
                if ingestor.buffered() >= batch {
                    ingestor.flush()?;
                }
            }
        }
        reader.join().expect("the reader thread does not panic");
        if let Err(IngestError::Truncated { .. }) = &result {
            // The lines before the damage were accepted in order: make them durable, so the
            // error's promise ("kept") holds.
            ingestor.flush()?;
        }
        result
    })?;
    ingestor.flush()?;
    Ok(())
}

/// Checked records of one chunk of a file, with their line numbers.
struct Chunk {
    file: std::sync::Arc<str>,
    records: Vec<(Checked, u64)>,
}

/// Reads one file in chunks, checks each chunk on all cores and sends it on.
fn read_and_check(
    path: &Path,
    checker: &Checker<'_>,
    bar: &indicatif::ProgressBar,
    tx: &std::sync::mpsc::SyncSender<Result<Chunk, IngestError>>,
) -> Result<(), IngestError> {
    let mut reader = open(path, bar)?;
    let name: std::sync::Arc<str> = path.display().to_string().into();
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
    // (start, end, line number) of each non-blank line in `buf`.
    let mut spans: Vec<(usize, usize, u64)> = Vec::with_capacity(CHUNK_LINES);
    let mut number = 0u64;
    let mut eof = false;
    while !eof {
        buf.clear();
        spans.clear();
        while spans.len() < CHUNK_LINES {
            let start = buf.len();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(n) => n,
                Err(source) => {
                    // Hand on the lines read before the damage, then the error: what was
                    // readable is kept, and the error says so.
                    buf.truncate(start);
                    send_chunk(checker, &name, &buf, &spans, tx);
                    return Err(IngestError::reading(path, number, source));
                }
            };
            if n == 0 {
                eof = true;
                break;
            }
            number += 1;
            if let Some(line) = content(&buf[start..]) {
                spans.push((start, start + line.len(), number));
            }
        }
        if !send_chunk(checker, &name, &buf, &spans, tx) {
            // The writer stopped (it hit an error it will report); stop reading.
            return Ok(());
        }
    }
    tracing::debug!(file = %name, lines = number, "file read");
    Ok(())
}

/// Checks the lines `spans` marks in `buf` and sends them to the writer; false when the writer
/// has stopped.
fn send_chunk(
    checker: &Checker<'_>,
    name: &std::sync::Arc<str>,
    buf: &[u8],
    spans: &[(usize, usize, u64)],
    tx: &std::sync::mpsc::SyncSender<Result<Chunk, IngestError>>,
) -> bool {
    let lines: Vec<(&[u8], Expect)> = spans
        .iter()
        .map(|&(a, b, _)| (&buf[a..b], Expect::Any))
        .collect();
    let checked = checker.check_all(&lines);
    let records = checked.into_iter().zip(spans.iter().map(|s| s.2)).collect();
    tx.send(Ok(Chunk {
        file: name.clone(),
        records,
    }))
    .is_ok()
}
