//! The bounded on-disk spool: every report goes here first, the sender drains
//! it oldest first.
//!
//! Layout of `--spool-dir`:
//!
//! * `NNNNNNNNNNNNNNNNNNNN.seg`: append-only segments, numbered in order. Each
//!   starts with the 8-byte magic `SMSPOOL1`, then records:
//!   `len: u32 LE | crc32(payload): u32 LE | payload (len bytes, one Report as JSON)`.
//!   A segment holds at most `per_segment` records, then a new one is started,
//!   so dropping the oldest reports when full is one `remove_file`.
//! * `cursor`: `"<seq> <offset> <records>"`, how far the oldest segment has
//!   been acknowledged by the server; replaced atomically (write + rename).
//!
//! Crash safety: a record is written with one `write` before the sender may
//! see it, so a crash of the agent loses at most the report being written.
//! On open, a torn or corrupt record ends its segment: a torn tail of the
//! last segment is cut off so appends continue after the last good record.
//! Records are not fsync'd one by one (a process crash keeps the page cache);
//! segments are synced when they are sealed.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::AgentError;

const MAGIC: &[u8; 8] = b"SMSPOOL1";
const HEADER: u64 = MAGIC.len() as u64;
const RECORD_HEADER: usize = 8;
/// A report is a few KiB; anything this big is damage, not data.
const MAX_RECORD: u32 = 16 << 20;
const CURSOR: &str = "cursor";

/// Where a batch returned by [`Spool::peek`] ends: pass it to [`Spool::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    seq: u64,
    offset: u64,
    records: usize,
}

/// The oldest unacknowledged reports, as raw JSON, and where they end.
#[derive(Debug)]
pub struct Batch {
    pub records: Vec<Vec<u8>>,
    pub end: Position,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Valid records in the file.
    records: usize,
    /// End of the last valid record.
    end: u64,
    /// Records already acknowledged, and where the next one starts.
    read: usize,
    read_offset: u64,
}

impl Segment {
    fn unread(&self) -> usize {
        self.records - self.read
    }
}

/// The spool itself. Not thread-safe: share it through [`SharedSpool`].
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max: usize,
    per_segment: usize,
    /// Oldest first; the last one is the one appended to.
    segments: VecDeque<Segment>,
    active: Option<File>,
    len: usize,
    /// Never reused, even when every segment was deleted: the cursor names one.
    next_seq: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping at most `max` reports.
    pub fn open(dir: &Path, max: usize) -> Result<Self, AgentError> {
        let max = max.max(1);
        // Small enough that dropping a segment loses a small share of the
        // spool, large enough that files are few; at most one batch.
        let per_segment = (max / 16).clamp(1, crate::send::MAX_BATCH);
        fs::create_dir_all(dir).map_err(|e| AgentError::spool_io(dir, e))?;
        let cursor = read_cursor(dir);
        let mut seqs: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| AgentError::spool_io(dir, e))?
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut spool = Self {
            dir: dir.to_owned(),
            max,
            per_segment,
            segments: VecDeque::new(),
            active: None,
            len: 0,
            next_seq: seqs.last().copied().max(cursor.map(|c| c.seq)).unwrap_or(0) + 1,
        };
        let last = seqs.last().copied();
        for seq in seqs {
            let path = spool.segment_path(seq);
            if cursor.is_some_and(|c| seq < c.seq) {
                remove(&path)?; // fully acknowledged before a crash
                continue;
            }
            let (records, end) = scan(&path)?;
            if Some(seq) == last {
                cut_torn_tail(&path, end)?;
            }
            let mut seg = Segment {
                seq,
                path,
                records,
                end,
                read: 0,
                read_offset: HEADER,
            };
            if let Some(c) = cursor.filter(|c| c.seq == seq) {
                seg.read = c.records.min(records);
                seg.read_offset = if c.records >= records {
                    end
                } else {
                    c.offset.min(end)
                };
            }
            spool.len += seg.unread();
            spool.segments.push_back(seg);
        }
        if let Some(seg) = spool.segments.back()
            && seg.records < spool.per_segment
        {
            let file = OpenOptions::new()
                .append(true)
                .open(&seg.path)
                .map_err(|e| AgentError::spool_io(&seg.path, e))?;
            spool.active = Some(file);
        }
        spool.gc_front()?;
        let dropped = spool.enforce_bound()?;
        if spool.len > 0 || dropped > 0 {
            tracing::info!(reports = spool.len, dropped, dir = %dir.display(), "spool opened with unsent reports");
        }
        Ok(spool)
    }

    /// Unsent reports.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bound given to [`Spool::open`].
    pub fn max(&self) -> usize {
        self.max
    }

    /// Appends one report. Returns how many of the oldest reports were dropped
    /// to stay within the bound (and logs it).
    pub fn append(&mut self, payload: &[u8]) -> Result<usize, AgentError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or(AgentError::TooLarge {
                bytes: payload.len(),
            })?;
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.records >= self.per_segment);
        if self.active.is_none() || full {
            self.rotate()?;
        }
        let (Some(file), Some(seg)) = (self.active.as_mut(), self.segments.back_mut()) else {
            unreachable!("rotate() leaves an active segment at the back");
        };
        let mut buf = Vec::with_capacity(RECORD_HEADER + payload.len());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&crc32(payload).to_le_bytes());
        buf.extend_from_slice(payload);
        file.write_all(&buf)
            .map_err(|e| AgentError::spool_io(&seg.path, e))?;
        seg.records += 1;
        seg.end += buf.len() as u64;
        self.len += 1;
        self.enforce_bound()
    }

    /// Up to `max_records` of the oldest unsent reports, oldest first.
    pub fn peek(&self, max_records: usize) -> Result<Batch, AgentError> {
        self.peek_bounded(max_records, usize::MAX)
    }

    /// Like [`Spool::peek`], also stopping before the payloads exceed
    /// `max_bytes` (at least one report is always returned).
    pub fn peek_bounded(&self, max_records: usize, max_bytes: usize) -> Result<Batch, AgentError> {
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut bytes_out = 0usize;
        let mut end = match self.segments.front() {
            Some(s) => Position {
                seq: s.seq,
                offset: s.read_offset,
                records: s.read,
            },
            None => Position {
                seq: 0,
                offset: HEADER,
                records: 0,
            },
        };
        'segments: for seg in &self.segments {
            if records.len() >= max_records {
                break;
            }
            if seg.unread() == 0 {
                continue;
            }
            let mut file = File::open(&seg.path).map_err(|e| AgentError::spool_io(&seg.path, e))?;
            file.seek(SeekFrom::Start(seg.read_offset))
                .map_err(|e| AgentError::spool_io(&seg.path, e))?;
            let mut bytes = Vec::new();
            file.take(seg.end - seg.read_offset)
                .read_to_end(&mut bytes)
                .map_err(|e| AgentError::spool_io(&seg.path, e))?;
            let mut at = 0usize;
            let mut n = seg.read;
            while records.len() < max_records && n < seg.records {
                let Some((payload, next)) = parse_record(&bytes, at) else {
                    return Err(AgentError::Corrupt {
                        path: seg.path.clone(),
                        offset: seg.read_offset + at as u64,
                    });
                };
                let full = !records.is_empty() && bytes_out + payload.len() > max_bytes;
                if !full {
                    bytes_out += payload.len();
                    records.push(payload.to_vec());
                    at = next;
                    n += 1;
                }
                end = Position {
                    seq: seg.seq,
                    offset: seg.read_offset + at as u64,
                    records: n,
                };
                if full {
                    break 'segments;
                }
            }
        }
        Ok(Batch { records, end })
    }

    /// Marks everything up to `end` as delivered. Segments dropped meanwhile
    /// (spool full) are simply gone already.
    pub fn ack(&mut self, end: Position) -> Result<(), AgentError> {
        while let Some(front) = self.segments.front() {
            if front.seq < end.seq {
                let unread = front.unread();
                self.drop_front()?;
                self.len -= unread;
            } else {
                break;
            }
        }
        if let Some(front) = self.segments.front_mut()
            && front.seq == end.seq
            && end.records > front.read
        {
            self.len -= end.records.min(front.records) - front.read;
            front.read = end.records.min(front.records);
            front.read_offset = end.offset;
        }
        self.gc_front()?;
        self.write_cursor()
    }

    /// Drops the oldest segment (when it cannot be read); returns the reports lost.
    pub fn drop_oldest_segment(&mut self) -> usize {
        let unread = self.segments.front().map_or(0, Segment::unread);
        if let Err(e) = self.drop_front() {
            tracing::error!(error = %e, "could not remove a spool segment");
        }
        self.len -= unread;
        unread
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.seg"))
    }

    /// Seals the active segment and starts a new one.
    fn rotate(&mut self) -> Result<(), AgentError> {
        if let Some(file) = self.active.take() {
            // Sealed segments are durable across power loss too.
            let _ = file.sync_data();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.segment_path(seq);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| AgentError::spool_io(&path, e))?;
        file.write_all(MAGIC)
            .map_err(|e| AgentError::spool_io(&path, e))?;
        self.segments.push_back(Segment {
            seq,
            path,
            records: 0,
            end: HEADER,
            read: 0,
            read_offset: HEADER,
        });
        self.active = Some(file);
        self.gc_front()
    }

    /// Drops whole oldest segments until the spool fits its bound.
    fn enforce_bound(&mut self) -> Result<usize, AgentError> {
        let mut dropped = 0;
        // The active segment never holds more than `max` records, so while
        // over the bound there is always an older segment to drop.
        while self.len > self.max && self.segments.len() > 1 {
            let unread = self.segments.front().map_or(0, Segment::unread);
            self.drop_front()?;
            self.len -= unread;
            dropped += unread;
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                kept = self.len,
                max = self.max,
                "spool full: dropped the oldest reports"
            );
        }
        Ok(dropped)
    }

    /// Removes sealed segments that are fully delivered.
    fn gc_front(&mut self) -> Result<(), AgentError> {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.unread() == 0) {
            self.drop_front()?;
        }
        Ok(())
    }

    fn drop_front(&mut self) -> Result<(), AgentError> {
        if let Some(seg) = self.segments.pop_front() {
            if self.segments.is_empty() {
                self.active = None;
            }
            remove(&seg.path)?;
        }
        Ok(())
    }

    fn write_cursor(&self) -> Result<(), AgentError> {
        let Some(front) = self.segments.front() else {
            return Ok(());
        };
        let tmp = self.dir.join("cursor.tmp");
        let text = format!("{} {} {}\n", front.seq, front.read_offset, front.read);
        fs::write(&tmp, text).map_err(|e| AgentError::spool_io(&tmp, e))?;
        let path = self.dir.join(CURSOR);
        fs::rename(&tmp, &path).map_err(|e| AgentError::spool_io(&path, e))
    }
}

fn remove(path: &Path) -> Result<(), AgentError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AgentError::spool_io(path, e)),
        _ => Ok(()),
    }
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join(CURSOR)).ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    Some(Position {
        seq: it.next()?.ok()?,
        offset: it.next()?.ok()?,
        records: usize::try_from(it.next()?.ok()?).ok()?,
    })
}

/// Counts the valid records of a segment and where the last one ends.
fn scan(path: &Path) -> Result<(usize, u64), AgentError> {
    let bytes = fs::read(path).map_err(|e| AgentError::spool_io(path, e))?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        tracing::warn!(path = %path.display(), "spool segment without header: ignored");
        return Ok((0, HEADER));
    }
    let mut at = MAGIC.len();
    let mut n = 0;
    while let Some((_, next)) = parse_record(&bytes, at) {
        at = next;
        n += 1;
    }
    if at < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            offset = at,
            lost_bytes = bytes.len() - at,
            "spool segment ends in a torn or corrupt record: skipped"
        );
    }
    Ok((n, at as u64))
}

/// Cuts a torn last record off the segment appends will continue.
fn cut_torn_tail(path: &Path, end: u64) -> Result<(), AgentError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AgentError::spool_io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| AgentError::spool_io(path, e))?
        .len();
    if len < HEADER {
        let mut f = file;
        f.set_len(0).map_err(|e| AgentError::spool_io(path, e))?;
        f.write_all(MAGIC)
            .map_err(|e| AgentError::spool_io(path, e))?;
    } else if len > end {
        file.set_len(end)
            .map_err(|e| AgentError::spool_io(path, e))?;
    }
    Ok(())
}

/// The record at `at`, and where the next one starts; `None` if torn or corrupt.
fn parse_record(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let start = at + RECORD_HEADER;
    let payload = bytes.get(start..start + len as usize)?;
    (crc32(payload) == crc).then_some((payload, start + len as usize))
}

/// CRC-32 (IEEE 802.3, as zlib and gzip): the record checksum.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The spool shared by the collector (appends) and the sender (drains).
/// The lock is held for file operations only, never across a network call.
#[derive(Debug)]
pub struct SharedSpool {
    spool: Mutex<Spool>,
    changed: Condvar,
}

impl SharedSpool {
    pub fn new(spool: Spool) -> Self {
        Self {
            spool: Mutex::new(spool),
            changed: Condvar::new(),
        }
    }

    /// The spool, even if a thread panicked while holding it: every method
    /// leaves it consistent between file operations.
    pub fn lock(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends and wakes the sender.
    pub fn push(&self, payload: &[u8]) -> Result<usize, AgentError> {
        let dropped = self.lock().append(payload)?;
        self.changed.notify_all();
        Ok(dropped)
    }

    /// Waits until the spool has something or `timeout` passes.
    pub fn wait_nonempty(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        !guard.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: usize) -> Vec<u8> {
        format!(r#"{{"ts_ms":{i}}}"#).into_bytes()
    }

    fn drain(s: &mut Spool) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let b = s.peek(7).unwrap();
            if b.records.is_empty() {
                return all;
            }
            all.extend(b.records);
            s.ack(b.end).unwrap();
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The table-driven CRC-32 that wrote spools before `crc32fast`: the
    /// reference the on-disk format was written with.
    fn reference_crc32(data: &[u8]) -> u32 {
        const TABLE: [u32; 256] = {
            let mut t = [0u32; 256];
            let mut i = 0;
            while i < 256 {
                let mut c = i as u32;
                let mut k = 0;
                while k < 8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                    k += 1;
                }
                t[i] = c;
                i += 1;
            }
            t
        };
        let mut c = !0u32;
        for &b in data {
            c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        !c
    }

    #[test]
    fn crc32_is_the_checksum_existing_spools_were_written_with() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..600 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert_eq!(crc32(&data), reference_crc32(&data), "{len} bytes");
        }
    }

    #[test]
    fn replays_oldest_first_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 64).unwrap(); // 4 per segment
        for i in 0..10 {
            s.append(&payload(i)).unwrap();
        }
        let b = s.peek(3).unwrap();
        assert_eq!(b.records, (0..3).map(payload).collect::<Vec<_>>());
        s.ack(b.end).unwrap();
        assert_eq!(s.len(), 7);
        drop(s);
        let mut s = Spool::open(dir.path(), 64).unwrap();
        assert_eq!(s.len(), 7, "the cursor survives a restart");
        s.append(&payload(10)).unwrap();
        assert_eq!(drain(&mut s), (3..11).map(payload).collect::<Vec<_>>());
        assert!(s.is_empty());
        let segs = fs::read_dir(dir.path()).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        });
        assert!(segs.count() <= 1, "delivered segments are deleted");
    }

    #[test]
    fn full_spool_drops_the_oldest_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 32).unwrap(); // 2 per segment
        let mut dropped = 0;
        for i in 0..100 {
            dropped += s.append(&payload(i)).unwrap();
            assert!(s.len() <= 32);
        }
        assert_eq!(dropped + s.len(), 100);
        let left = drain(&mut s);
        assert_eq!(left.len(), 100 - dropped);
        assert_eq!(left.last(), Some(&payload(99)), "the newest are kept");
        assert_eq!(left[0], payload(dropped), "in order, oldest first");
    }

    #[test]
    fn torn_last_record_is_skipped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        for i in 0..3 {
            s.append(&payload(i)).unwrap();
        }
        let seg = s.segments.back().unwrap().path.clone();
        drop(s);
        // A crash in the middle of writing a fourth record: header and half a payload.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        let p = payload(3);
        f.write_all(&(p.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&crc32(&p).to_le_bytes()).unwrap();
        f.write_all(&p[..3]).unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        assert_eq!(s.len(), 3);
        s.append(&payload(4)).unwrap();
        let got = drain(&mut s);
        assert_eq!(got, vec![payload(0), payload(1), payload(2), payload(4)]);
    }

    #[test]
    fn corrupt_record_ends_a_sealed_segment_without_losing_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 32).unwrap(); // 2 per segment
        for i in 0..4 {
            s.append(&payload(i)).unwrap();
        }
        let first = s.segments.front().unwrap().path.clone();
        drop(s);
        // Flip a byte in the second record of the first segment.
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        fs::write(&first, bytes).unwrap();
        let mut s = Spool::open(dir.path(), 32).unwrap();
        assert_eq!(drain(&mut s), vec![payload(0), payload(2), payload(3)]);
    }

    #[test]
    fn ack_after_the_batch_was_dropped_for_space_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 16).unwrap(); // 1 per segment
        for i in 0..16 {
            s.append(&payload(i)).unwrap();
        }
        let b = s.peek(4).unwrap();
        for i in 16..20 {
            s.append(&payload(i)).unwrap(); // drops 0..4 meanwhile
        }
        s.ack(b.end).unwrap();
        assert_eq!(s.len(), 16);
        assert_eq!(drain(&mut s)[0], payload(4));
    }

    #[test]
    fn segment_numbers_are_not_reused_after_everything_was_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        s.append(&payload(0)).unwrap();
        let b = s.peek(10).unwrap();
        s.ack(b.end).unwrap();
        assert_eq!(s.drop_oldest_segment(), 0);
        s.append(&payload(1)).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        assert_eq!(drain(&mut s), vec![payload(1)]);
    }

    #[test]
    fn batches_stop_at_the_byte_budget_but_hold_at_least_one_report() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000).unwrap();
        for i in 0..10 {
            s.append(&payload(i)).unwrap(); // 11-12 bytes each
        }
        let b = s.peek_bounded(500, 40).unwrap();
        assert_eq!(b.records, (0..3).map(payload).collect::<Vec<_>>());
        s.ack(b.end).unwrap();
        let b = s.peek_bounded(500, 1).unwrap();
        assert_eq!(b.records, vec![payload(3)]);
        s.ack(b.end).unwrap();
        assert_eq!(drain(&mut s), (4..10).map(payload).collect::<Vec<_>>());
    }

    /// Random appends, batches, acks, reopens and lost acks against a plain
    /// queue: the spool must deliver exactly the model's reports, in order.
    #[test]
    fn behaves_like_a_bounded_queue_under_random_operations() {
        let mut seed = 0x1234_5678_9ABC_DEF0u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for max in [1usize, 5, 40, 200] {
            let dir = tempfile::tempdir().unwrap();
            let mut s = Spool::open(dir.path(), max).unwrap();
            let mut model = VecDeque::new();
            let mut next = 0usize;
            for _ in 0..300 {
                match rnd(10) {
                    0..=5 => {
                        let dropped = s.append(&payload(next)).unwrap();
                        model.push_back(next);
                        next += 1;
                        for _ in 0..dropped {
                            model.pop_front();
                        }
                    }
                    6 | 7 => {
                        let k = 1 + rnd(20) as usize;
                        let budget = 1 + rnd(80) as usize;
                        let b = s.peek_bounded(k, budget).unwrap();
                        let mut want: Vec<Vec<u8>> = Vec::new();
                        let mut used = 0;
                        for p in model.iter().take(k).map(|&i| payload(i)) {
                            if !want.is_empty() && used + p.len() > budget {
                                break;
                            }
                            used += p.len();
                            want.push(p);
                        }
                        assert_eq!(b.records, want);
                        if rnd(4) > 0 {
                            s.ack(b.end).unwrap();
                            model.drain(..want.len());
                        } // else: the send failed, nothing acknowledged
                    }
                    8 => {
                        drop(s);
                        s = Spool::open(dir.path(), max).unwrap();
                    }
                    _ => {}
                }
                assert_eq!(s.len(), model.len());
                assert!(s.len() <= max);
            }
        }
    }
}
