//! `lantern ingest --kafka`: the signal and outcome topics into the lake.
//!
//! One consumer in the configured group subscribes to the three signal topics and the outcome
//! topic; partitions are shared among all ingest processes in the group. Offsets are committed
//! by hand, and only after [`Ingestor::flush`] has made the lake files and dead letters durable,
//! so a crash at any point loses nothing; what is delivered again is recognised by its key.
//!
//! The loop never sleeps: it polls with a short timeout, and flushes when the batch is full or
//! the flush interval has passed since the last flush.
//!
//! **Rebalances.** When the group takes partitions away (another process joins or leaves), the
//! rebalance callback hands control to the writing thread before the partitions go: it writes
//! what it holds, flushes the lake, commits every durable offset, and forgets the revoked
//! partitions (their offsets and any message of theirs still in flight, which the new owner
//! reads again from the committed offset). Only then does the callback return and the broker
//! move the partitions. So the old owner never commits a stale offset for a partition it no
//! longer owns.
//!
//! A broker may refuse that last commit (Kafka accepts commits while a rebalance is being
//! prepared; librdkafka's mock cluster, and any broker once the group is completing the
//! rebalance, answer `REBALANCE_IN_PROGRESS`). Then the new owner reads some events again from
//! the older committed offset. They count once all the same: on every assignment the writer
//! forgets its cached lake keys, so an event the previous owner made durable is found in the
//! lake's files at the next flush and counted as a duplicate, not written twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{Checked, Checker, DeadLetter, DeadLetterSink, Expect, IngestError, Ingestor, Origin};
use crate::config::Settings;
use crate::contract::{SignalKind, Vocab};

fn kafka_err(what: &str) -> impl FnOnce(KafkaError) -> IngestError + '_ {
    move |e| IngestError::Kafka(format!("{what}: {e}"))
}

/// How a Kafka ingest run behaves.
#[derive(Debug, Clone)]
pub struct KafkaIngestOptions {
    /// Stop once every assigned partition is drained.
    pub until_idle: bool,
    /// Set to stop gracefully (SIGINT/SIGTERM set it).
    pub stop: Arc<AtomicBool>,
    /// Records per lake flush.
    pub batch: usize,
    /// Flush at least this often when anything is buffered.
    pub flush_interval: Duration,
    /// With `until_idle`: give up when no partition has been assigned after this long. `None`
    /// (the default) waits as long as it takes: a group that is rebalancing, members whose
    /// sessions have not yet expired, or more members than partitions are not errors.
    pub assignment_timeout: Option<Duration>,
    /// How often to log what a consumer without partitions is waiting for.
    pub waiting_log_interval: Duration,
    /// The data directory, for the last screening night on `/metrics`.
    pub data_dir: Option<std::path::PathBuf>,
    /// Live counters another thread may watch (a supervisor, a test).
    pub progress: Arc<Progress>,
}

/// What a running consumer has done so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Partitions currently assigned to it by the group.
    pub assigned: std::sync::atomic::AtomicUsize,
    /// Messages it has taken (written to the lake or dead-lettered).
    pub messages: AtomicU64,
    /// Assignments the group has handed it, an empty one included: a member that has joined
    /// (or rejoined after a rebalance) has seen one more.
    pub assignments: AtomicU64,
    /// Bumped, with a notification, whenever the writer has done something: a chunk taken, a
    /// flush, a rebalance, an idle poll.
    ticks: Mutex<u64>,
    changed: std::sync::Condvar,
}

impl Progress {
    fn notify(&self) {
        *self.ticks.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_all();
    }

    /// Blocks until `done()` holds, checking it again each time this consumer reports
    /// progress, for at most `limit`; returns whether it held. For a supervisor or a test that
    /// must act when the consumer reaches a state, without polling on a timer.
    pub fn wait_until(&self, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut ticks = self.ticks.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if done() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            ticks = self
                .changed
                .wait_timeout(ticks, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl KafkaIngestOptions {
    pub fn new(batch: usize) -> KafkaIngestOptions {
        KafkaIngestOptions {
            until_idle: false,
            stop: Arc::new(AtomicBool::new(false)),
            batch,
            flush_interval: Duration::from_secs(1),
            assignment_timeout: None,
            waiting_log_interval: Duration::from_secs(30),
            data_dir: None,
            progress: Arc::new(Progress::default()),
        }
    }
}

/// What a run consumed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KafkaReport {
    pub messages: u64,
    pub commits: u64,
    /// From the first message received to the last commit: the consumer's steady-state
    /// throughput, without the group join before it.
    pub consuming: Duration,
}

impl KafkaReport {
    /// Messages per second while consuming.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.consuming.as_secs_f64().max(1e-9)
    }
}

/// The topics consumed and what each carries.
pub fn topics(settings: &Settings) -> Vec<(String, Expect)> {
    let mut t: Vec<(String, Expect)> = SignalKind::ALL
        .iter()
        .map(|k| (settings.topics.for_kind(*k).to_string(), Expect::Kind(*k)))
        .collect();
    t.push((settings.topics.case_outcomes.clone(), Expect::Outcome));
    t
}

/// Messages taken from the consumer at once and checked together on every core.
const CHUNK_MESSAGES: usize = 16_384;

/// What the polling thread hands to the writing thread.
enum Polled<'c> {
    /// Messages in arrival order, each with its check result and the rebalance epoch it was
    /// polled in.
    Chunk(Vec<(BorrowedMessage<'c>, Checked, u64)>),
    /// A poll found nothing: a moment to flush on the interval, or to see whether the topics
    /// are drained.
    Idle,
}

/// A partition: topic and number.
type Tp = (String, i32);

/// What the rebalance callback asks of the writing thread.
enum Control {
    /// These partitions are about to go: make everything durable, commit, forget them.
    Revoke { partitions: Vec<Tp>, epoch: u64 },
    /// These partitions are now ours, from `epoch` on.
    Assign { partitions: Vec<Tp>, epoch: u64 },
}

/// The ingest consumer's context: passes rebalances to the writing thread and waits until it
/// has acted on them.
#[derive(Default)]
pub struct IngestContext {
    /// Counts rebalance events; every polled message is tagged with it.
    epoch: AtomicU64,
    /// Set while a writer is running.
    control: Mutex<Option<std::sync::mpsc::Sender<(Control, std::sync::mpsc::SyncSender<()>)>>>,
    /// Whether the group rebalances incrementally (`group.protocol = consumer`, or a
    /// `cooperative-sticky` assignor), known from the configuration; see
    /// [`IngestContext::rebalance`].
    cooperative: bool,
}

impl ClientContext for IngestContext {}

impl ConsumerContext for IngestContext {
    /// rust-rdkafka's own `rebalance`, except that the protocol comes from the configuration:
    /// the default asks librdkafka (`rd_kafka_rebalance_protocol`) from inside the callback,
    /// and during the consumer's close that request was seen to wait for ever (twice in
    /// session 9, in `topics_drain_…`, under load; gdb showed the closing poll blocked in it).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr::*;
        let rebalance = match err {
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                Rebalance::Error(rdkafka::error::KafkaError::Rebalance(other.into()))
            }
        };
        self.pre_rebalance(consumer, &rebalance);
        let done = match (err, self.cooperative) {
            (RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, true) => consumer.incremental_assign(tpl),
            (RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, false) => consumer.assign(tpl),
            (_, true) => consumer.incremental_unassign(tpl),
            (_, false) => consumer.unassign(),
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not apply a rebalance");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
            self.hand_over(Control::Revoke {
                partitions: partitions(tpl),
                epoch,
            });
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::info!(partitions = tpl.count(), "partitions assigned");
            self.hand_over(Control::Assign {
                partitions: partitions(tpl),
                epoch,
            });
        }
    }
}

impl IngestContext {
    /// Sends a rebalance to the writer and waits for it to act, so no message polled after
    /// the callback returns can overtake it. Without a running writer there is nothing to do.
    fn hand_over(&self, control: Control) {
        let sender = self.control.lock().expect("control lock").clone();
        let Some(sender) = sender else { return };
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        if sender.send((control, ack)).is_err() {
            return;
        }
        // The writer acts within one flush; a minute means it is stuck (the error it hit ends
        // the run anyway).
        if done.recv_timeout(Duration::from_secs(60)).is_err() {
            tracing::warn!("the writer did not acknowledge a rebalance within 60s");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// The consumer `lantern ingest --kafka` uses.
pub type IngestConsumer = BaseConsumer<IngestContext>;

/// Consumes until stopped (or drained, with `until_idle`), then flushes, commits and leaves the
/// group.
pub fn consume(
    settings: &Settings,
    ingestor: &mut Ingestor<'_>,
    opts: &KafkaIngestOptions,
) -> Result<KafkaReport, IngestError> {
    let consumer = consumer(settings)?;
    let topics = topics(settings);
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    consumer
        .subscribe(&names)
        .map_err(kafka_err("cannot subscribe"))?;
    tracing::info!(topics = ?names, group = %settings.kafka.group_id, "consuming");
    let report = consume_from(&consumer, settings, ingestor, opts)?;
    consumer.unsubscribe();
    close(consumer, Duration::from_secs(30));
    Ok(report)
}

/// Closes the consumer (leaving the group at once), waiting at most `limit`.
///
/// rdkafka's own drop polls until librdkafka says the consumer is closed, with no limit; seen
/// here, a close during a rebalance under load never finished and the process hung after its
/// work was done. Everything is durable and committed by now, so past the limit the handle is
/// abandoned (the broker expires the member's session) rather than hang a shutdown.
fn close(consumer: IngestConsumer, limit: Duration) {
    let deadline = Instant::now() + limit;
    if consumer.close_queue().is_ok() {
        while !consumer.closed() && Instant::now() < deadline {
            consumer.poll(Duration::from_millis(100));
        }
    }
    if consumer.closed() {
        drop(consumer);
    } else {
        tracing::warn!(
            waited_s = limit.as_secs(),
            "the consumer did not close in time; leaving it to the broker's session timeout"
        );
        std::mem::forget(consumer);
    }
}

/// The ingest consumer: manual commits only, from the earliest offset when the group has none.
pub fn consumer(settings: &Settings) -> Result<IngestConsumer, IngestError> {
    consumer_config(settings)
        .create_with_context(IngestContext {
            // KIP-848's `consumer` group protocol is incremental by design; the classic one
            // only with a cooperative assignor.
            cooperative: settings
                .kafka
                .properties
                .get("group.protocol")
                .map(String::as_str)
                == Some("consumer")
                || settings
                    .kafka
                    .properties
                    .get("partition.assignment.strategy")
                    .is_some_and(|s| s.contains("cooperative")),
            ..IngestContext::default()
        })
        .map_err(kafka_err(
            "cannot create the consumer; check [kafka] settings",
        ))
}

/// The ingest consumer's librdkafka configuration.
pub fn consumer_config(settings: &Settings) -> rdkafka::ClientConfig {
    let mut config = crate::kafka::client_config(&settings.kafka);
    config
        .set("group.id", &settings.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    if !settings.kafka.group_instance_id.is_empty() {
        // Static membership: a restart within the session timeout reclaims the same
        // partitions without a rebalance.
        config.set("group.instance.id", &settings.kafka.group_instance_id);
    }
    // Two librdkafka defaults that stall a consumer draining a backlog; a configured value
    // wins. fetch.wait.max.ms (500): the mock cluster waits it out on every fetch (measured:
    // 61,000 messages/s drained at 500 ms, 118,000 at 50 ms). fetch.queue.backoff.ms (1000):
    // once the local queue is full, fetching pauses a whole second, while ingest empties the
    // queue in a fraction of that (measured with the benchmark: 115,000 to 194,000 messages/s
    // at 10 ms).
    for (key, value) in [
        ("fetch.wait.max.ms", "50"),
        ("fetch.queue.backoff.ms", "10"),
    ] {
        if !settings.kafka.properties.contains_key(key) {
            config.set(key, value);
        }
    }
    config
}

/// Consumes with a consumer already subscribed (or assigned), as [`consume`] does. A
/// benchmark assigns partitions itself, to time ingest without the group join.
///
/// Two threads share the work, as in file ingest: one polls the consumer and checks each chunk
/// of messages on every core; the calling thread takes the checked chunks in order, writes the
/// lake and commits. Checking the next chunk therefore overlaps writing the previous one, and
/// the lake writer still sees messages in the order the consumer delivered them.
pub fn consume_from(
    consumer: &IngestConsumer,
    settings: &Settings,
    ingestor: &mut Ingestor<'_>,
    opts: &KafkaIngestOptions,
) -> Result<KafkaReport, IngestError> {
    let topics = topics(settings);
    let expect: HashMap<String, Expect> = topics.iter().cloned().collect();
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    let checker = ingestor.checker();
    let done = AtomicBool::new(false);
    // Two chunks in flight: one being checked, one being written.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Polled<'_>>(2);
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    *consumer.context().control.lock().expect("control lock") = Some(control_tx);
    let mut report = KafkaReport::default();
    let (written, first_message) = std::thread::scope(|scope| {
        let poller =
            scope.spawn(|| poll_and_check(consumer, &checker, &expect, &opts.stop, &done, tx));
        let channels = Channels {
            data: rx,
            control: control_rx,
        };
        let written = write_and_commit(consumer, ingestor, channels, opts, &names, &mut report);
        // From here on a rebalance (the group leave on close) has no writer to wait for.
        *consumer.context().control.lock().expect("control lock") = None;
        // Drained, failed or stopped: the poller stops too (its channel is closed by now).
        done.store(true, Ordering::Relaxed);
        let first = poller.join().expect("the polling thread does not panic");
        (written, first)
    });
    written?;
    report.consuming = first_message.map(|t| t.elapsed()).unwrap_or_default();
    Ok(report)
}

/// The polling thread: takes messages in chunks, checks each chunk on every core, and hands it
/// on. Stops when asked to (`stop`, by a signal) or when the writer is done. Returns when the
/// first message arrived.
fn poll_and_check<'c>(
    consumer: &'c IngestConsumer,
    checker: &Checker<'_>,
    expect: &HashMap<String, Expect>,
    stop: &AtomicBool,
    done: &AtomicBool,
    tx: std::sync::mpsc::SyncSender<Polled<'c>>,
) -> Option<Instant> {
    let mut first_message = None;
    let mut last_error_log: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) && !done.load(Ordering::Relaxed) {
        let mut messages = Vec::new();
        let mut epochs = Vec::new();
        let mut timeout = Duration::from_millis(100);
        while messages.len() < CHUNK_MESSAGES {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    messages.push(m);
                    epochs.push(consumer.context().epoch.load(Ordering::SeqCst));
                    // Take what is already fetched, without waiting for more.
                    timeout = Duration::ZERO;
                }
                Some(Err(e)) => {
                    // Broker outages and rebalances surface here; librdkafka reconnects by
                    // itself.
                    let quiet =
                        last_error_log.is_some_and(|t| t.elapsed() < Duration::from_secs(5));
                    if !quiet {
                        tracing::warn!(error = %e, "kafka consumer error; retrying");
                        last_error_log = Some(Instant::now());
                    }
                    break;
                }
                None => break,
            }
        }
        let polled = if messages.is_empty() {
            Polled::Idle
        } else {
            first_message.get_or_insert_with(Instant::now);
            let records: Vec<(&[u8], Expect)> = messages
                .iter()
                .map(|m| {
                    let e = expect.get(m.topic()).copied().unwrap_or(Expect::Any);
                    (m.payload().unwrap_or(&[]), e)
                })
                .collect();
            let checked = checker.check_all(&records);
            drop(records);
            Polled::Chunk(
                messages
                    .into_iter()
                    .zip(checked)
                    .zip(epochs)
                    .map(|((m, c), e)| (m, c, e))
                    .collect(),
            )
        };
        if tx.send(polled).is_err() {
            break;
        }
    }
    first_message
}

/// The writing thread's two inputs: checked messages, and rebalances (each with an
/// acknowledgement the callback waits for).
struct Channels<'c> {
    data: std::sync::mpsc::Receiver<Polled<'c>>,
    control: std::sync::mpsc::Receiver<(Control, std::sync::mpsc::SyncSender<()>)>,
}

/// Which partitions the writer may take messages from: those not revoked, and for each only
/// messages polled since its latest assignment (a message polled before a revoke and handed
/// over after it belongs to the partition's new owner, who reads it again).
#[derive(Default)]
struct Ownership {
    revoked: std::collections::HashSet<Tp>,
    assigned_at: HashMap<Tp, u64>,
}

impl Ownership {
    fn owns(&self, topic: &str, partition: i32, epoch: u64) -> bool {
        let tp = (topic.to_string(), partition);
        !self.revoked.contains(&tp) && self.assigned_at.get(&tp).is_none_or(|&at| epoch >= at)
    }
}

/// The writing thread: accepts checked messages in order, flushes the lake when the batch is
/// full or the interval has passed, and commits offsets only after each flush; acts on
/// rebalances as the module documentation says. Returns when the poller stops (a signal), the
/// topics are drained (`until_idle`), or on an error; in the first two cases after a last
/// flush and commit.
fn write_and_commit(
    consumer: &IngestConsumer,
    ingestor: &mut Ingestor<'_>,
    channels: Channels<'_>,
    opts: &KafkaIngestOptions,
    names: &[&str],
    report: &mut KafkaReport,
) -> Result<(), IngestError> {
    let started = Instant::now();
    // Next offset to commit per topic and partition, and whether anything is uncommitted.
    let mut next: Offsets = HashMap::new();
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut owner = Ownership::default();
    let mut waiting_since: Option<Instant> = None;
    let mut last_waiting_log: Option<Instant> = None;
    let mut last_status = Instant::now() - Duration::from_secs(3600);
    let mut last_drain_check: Option<Instant> = None;
    let take = |messages: Vec<(BorrowedMessage<'_>, Checked, u64)>,
                ingestor: &mut Ingestor<'_>,
                next: &mut Offsets,
                dirty: &mut bool,
                owner: &Ownership,
                report: &mut KafkaReport|
     -> Result<(), IngestError> {
        for (m, checked, epoch) in messages {
            let topic = m.topic();
            if !owner.owns(topic, m.partition(), epoch) {
                continue;
            }
            ingestor.accept(checked, || Origin::Kafka {
                topic: topic.to_string(),
                partition: m.partition(),
                offset: m.offset(),
            })?;
            match next.get_mut(topic) {
                Some(parts) => {
                    parts.insert(m.partition(), m.offset() + 1);
                }
                None => {
                    next.insert(
                        topic.to_string(),
                        HashMap::from([(m.partition(), m.offset() + 1)]),
                    );
                }
            }
            *dirty = true;
            report.messages += 1;
            opts.progress.messages.fetch_add(1, Ordering::Relaxed);
            if ingestor.buffered() >= opts.batch {
                flush_and_commit(consumer, ingestor, next, dirty, report)?;
            }
        }
        opts.progress.notify();
        Ok(())
    };
    loop {
        // Rebalances first: the callback is waiting.
        while let Ok((control, ack)) = channels.control.try_recv() {
            match control {
                Control::Revoke { partitions, epoch } => {
                    // Everything polled before the revoke is already in the channel.
                    while let Ok(polled) = channels.data.try_recv() {
                        if let Polled::Chunk(messages) = polled {
                            take(messages, ingestor, &mut next, &mut dirty, &owner, report)?;
                        }
                    }
                    flush_and_commit(consumer, ingestor, &next, &mut dirty, report)?;
                    last_flush = Instant::now();
                    for (topic, partition) in &partitions {
                        if let Some(parts) = next.get_mut(topic) {
                            parts.remove(partition);
                        }
                        owner.assigned_at.insert((topic.clone(), *partition), epoch);
                        owner.revoked.insert((topic.clone(), *partition));
                    }
                    next.retain(|_, parts| !parts.is_empty());
                    ingestor.forget_cached_keys();
                    let left = owner_count(consumer).saturating_sub(partitions.len());
                    opts.progress.assigned.store(left, Ordering::Relaxed);
                    crate::metrics::record_assigned(left);
                    tracing::info!(
                        partitions = partitions.len(),
                        "partitions revoked; durable offsets committed"
                    );
                }
                Control::Assign { partitions, epoch } => {
                    for tp in partitions {
                        owner.revoked.remove(&tp);
                        owner.assigned_at.insert(tp, epoch);
                    }
                    // The previous owner may have written these partitions' events since
                    // this process read the lake's keys: read them again.
                    ingestor.forget_cached_keys();
                    let now = owner_count(consumer);
                    opts.progress.assigned.store(now, Ordering::Relaxed);
                    opts.progress.assignments.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::record_assigned(now);
                }
            }
            let _ = ack.send(());
            opts.progress.notify();
        }
        let polled = match channels.data.recv_timeout(Duration::from_millis(20)) {
            Ok(p) => p,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match polled {
            Polled::Chunk(messages) => {
                waiting_since = None;
                take(messages, ingestor, &mut next, &mut dirty, &owner, report)?;
            }
            Polled::Idle => {
                opts.progress.notify();
                // Draining a backlog, an empty poll means the end is near: flush now rather
                // than wait out the interval. A daemon keeps batching, so a trickle of messages
                // does not become a trickle of tiny files.
                if opts.until_idle && dirty {
                    flush_and_commit(consumer, ingestor, &next, &mut dirty, report)?;
                    last_flush = Instant::now();
                }
                let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
                if last_status.elapsed() >= Duration::from_secs(5) {
                    crate::metrics::record_assigned(assigned);
                    if let Some(dir) = &opts.data_dir {
                        crate::metrics::record_last_night(dir);
                    }
                    last_status = Instant::now();
                }
                if assigned == 0 {
                    // Waiting for partitions is not an error: the group may be rebalancing,
                    // killed members' sessions may not have expired yet, or the group may have
                    // more members than partitions.
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if last_waiting_log.is_none_or(|t| t.elapsed() >= opts.waiting_log_interval) {
                        tracing::info!(
                            waited_s = since.elapsed().as_secs(),
                            topics = ?names,
                            "no partitions assigned yet: waiting for the group to assign some (a rebalance in progress, old members' sessions not yet expired, or more members than partitions)"
                        );
                        last_waiting_log = Some(Instant::now());
                    }
                    if let Some(deadline) = opts.assignment_timeout {
                        if opts.until_idle && since.elapsed() > deadline {
                            return Err(IngestError::Kafka(format!(
                                "no partition assigned after waiting {}s (the configured deadline); the group kept all partitions elsewhere or the topics {names:?} do not exist: check kafka.brokers, the topics, and the group's other members",
                                deadline.as_secs()
                            )));
                        }
                    }
                } else {
                    waiting_since = None;
                }
                // The whole-topic check asks the broker: at most twice a second.
                if opts.until_idle
                    && !dirty
                    && ingestor.buffered() == 0
                    && last_drain_check.is_none_or(|t| t.elapsed() >= Duration::from_millis(500))
                {
                    last_drain_check = Some(Instant::now());
                    if let Drained::Yes = drained(consumer, &next, names)? {
                        break;
                    }
                }
            }
        }
        if dirty && last_flush.elapsed() >= opts.flush_interval {
            flush_and_commit(consumer, ingestor, &next, &mut dirty, report)?;
            last_flush = Instant::now();
        }
    }
    let _ = started;
    if opts.stop.load(Ordering::Relaxed) {
        tracing::info!("stop requested; flushing and leaving the group");
    }
    if dirty || ingestor.buffered() > 0 {
        flush_and_commit(consumer, ingestor, &next, &mut dirty, report)?;
    }
    crate::metrics::record_ingest(&ingestor.stats().totals());
    Ok(())
}

/// Partitions the consumer holds now.
fn owner_count(consumer: &IngestConsumer) -> usize {
    consumer.assignment().map(|a| a.count()).unwrap_or(0)
}

/// Next offset to commit, by topic and partition.
type Offsets = HashMap<String, HashMap<i32, i64>>;

fn flush_and_commit(
    consumer: &IngestConsumer,
    ingestor: &mut Ingestor<'_>,
    next: &Offsets,
    dirty: &mut bool,
    report: &mut KafkaReport,
) -> Result<(), IngestError> {
    let flushed = ingestor.flush()?;
    tracing::debug!(
        files = flushed.files,
        records = flushed.records,
        "lake flush durable; committing offsets"
    );
    crate::metrics::record_flush();
    crate::metrics::record_ingest(&ingestor.stats().totals());
    for (topic, parts) in next {
        for (&partition, &offset) in parts {
            if let Some((_, high)) = cached_watermarks(consumer, topic, partition) {
                crate::metrics::record_lag(topic, partition, high - offset);
            }
        }
    }
    if next.is_empty() {
        *dirty = false;
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, parts) in next {
        for (partition, offset) in parts {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(kafka_err("building the offset list"))?;
        }
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            *dirty = false;
            report.commits += 1;
        }
        // The data is durable; an uncommitted offset only means redelivery, which the lake
        // recognises. Keep `dirty` so the next flush tries again.
        Err(e) => tracing::warn!(error = %e, "offset commit failed; will retry"),
    }
    Ok(())
}

enum Drained {
    Yes,
    No,
}

/// Whether the topics are drained: every assigned partition read to its high watermark, and
/// every other partition of the topics committed to its end by the group (another member may
/// still be reading it, or it may belong to a killed member whose session has not expired yet:
/// `--until-idle` then waits rather than end with part of the topics unread).
///
/// The watermarks of assigned partitions come from the consumer's last fetch response where it
/// has one (no round trip); the broker is asked only for a partition not fetched yet, and the
/// group's committed offsets only for a partition this run has read nothing from. Asking the
/// broker for every partition took half a second per check with 15 partitions on the mock
/// cluster, so the other members' partitions are checked only once this consumer's own are
/// drained.
fn drained(
    consumer: &IngestConsumer,
    next: &Offsets,
    names: &[&str],
) -> Result<Drained, IngestError> {
    let assignment = consumer
        .assignment()
        .map_err(kafka_err("reading the assignment"))?;
    let mut committed: Option<TopicPartitionList> = None;
    for el in assignment.elements() {
        let (topic, partition) = (el.topic(), el.partition());
        let cached = cached_watermarks(consumer, topic, partition);
        let (low, high) = match cached {
            Some(w) => w,
            None => match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok(w) => w,
                Err(_) => return Ok(Drained::No),
            },
        };
        let position = match next.get(topic).and_then(|parts| parts.get(&partition)) {
            Some(p) => *p,
            None => {
                let committed = committed.get_or_insert_with(|| {
                    consumer
                        .committed(Duration::from_secs(10))
                        .unwrap_or_else(|_| TopicPartitionList::new())
                });
                committed
                    .find_partition(topic, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(low)
            }
        };
        if position < high {
            return Ok(Drained::No);
        }
    }
    // Our own partitions are done; now the rest of the topics.
    let mut others = TopicPartitionList::new();
    for topic in names {
        let Ok(meta) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
            return Ok(Drained::No);
        };
        for t in meta.topics() {
            for p in t.partitions() {
                if assignment.find_partition(topic, p.id()).is_none() {
                    others.add_partition(topic, p.id());
                }
            }
        }
    }
    if others.count() == 0 {
        return Ok(if assignment.count() > 0 {
            Drained::Yes
        } else {
            Drained::No
        });
    }
    let Ok(group) = consumer.committed_offsets(others.clone(), Duration::from_secs(10)) else {
        return Ok(Drained::No);
    };
    for el in others.elements() {
        let (topic, partition) = (el.topic(), el.partition());
        let Ok((low, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5))
        else {
            return Ok(Drained::No);
        };
        let done = group
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(low);
        if done < high {
            return Ok(Drained::No);
        }
    }
    Ok(Drained::Yes)
}

/// The watermarks of a partition as of the consumer's last fetch response, without asking the
/// broker; `None` before the first fetch. The rdkafka crate does not wrap this librdkafka call.
fn cached_watermarks(consumer: &IngestConsumer, topic: &str, partition: i32) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` is borrowed; the topic is a
    // NUL-terminated string that outlives the call; `low` and `high` are writable i64s.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        && low >= 0
        && high >= 0)
        .then_some((low, high))
}

/// Every dead letter on the dead-letter topic, from the beginning to its current end, with
/// its key, as [`super::deadletter::Tally`] takes them.
pub fn read_dead_letters(settings: &Settings) -> Result<super::deadletter::Tally, IngestError> {
    let consumer: BaseConsumer = crate::kafka::client_config(&settings.kafka)
        .set(
            "group.id",
            format!("{}-dead-letter-reader", settings.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka_err("cannot create the dead-letter reader"))?;
    let mut tally = super::deadletter::Tally::default();
    let topic = &settings.topics.dead_letter;
    let mut bad = 0u64;
    crate::kafka::read_to_end(&consumer, topic, |m| {
        match m.payload().map(serde_json::from_slice::<DeadLetter>) {
            Some(Ok(letter)) => tally.add(letter),
            _ => bad += 1,
        }
    })
    .map_err(kafka_err("reading the dead-letter topic"))?;
    tally.unreadable = bad;
    Ok(tally)
}

/// A flag set by SIGINT or SIGTERM, for a graceful stop.
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            f.store(true, Ordering::Relaxed);
        });
    });
    flag
}

/// Counts failed deliveries, so a flush can refuse to let offsets be committed past a dead
/// letter that never reached the broker.
#[derive(Default)]
pub struct DeliveryCounter {
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().expect("error lock") = Some(e.to_string());
        }
    }
}

/// Dead letters to the `signals.dead-letter` topic, keyed by their origin.
pub struct KafkaDeadLetters {
    producer: BaseProducer<DeliveryCounter>,
    topic: String,
    count: u64,
}

impl KafkaDeadLetters {
    pub fn new(settings: &Settings) -> Result<KafkaDeadLetters, IngestError> {
        let producer = crate::kafka::producer_config(&settings.kafka)
            .create_with_context(DeliveryCounter::default())
            .map_err(kafka_err("cannot create the dead-letter producer"))?;
        Ok(KafkaDeadLetters {
            producer,
            topic: settings.topics.dead_letter.clone(),
            count: 0,
        })
    }
}

impl DeadLetterSink for KafkaDeadLetters {
    fn send(&mut self, letter: &DeadLetter) -> Result<(), IngestError> {
        let payload =
            serde_json::to_string(letter).map_err(|e| IngestError::DeadLetter(e.to_string()))?;
        // The origin is the stable key: a record delivered again after a crash (its offset not
        // yet committed) is dead-lettered again under the same key, and readers count it once.
        let key = letter.origin.key();
        let mut record = BaseRecord::to(&self.topic).key(&key).payload(&payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    // The local queue is full: serve delivery reports to make room.
                    self.producer.poll(Duration::from_millis(100));
                    record = r;
                }
                Err((e, _)) => return Err(IngestError::DeadLetter(e.to_string())),
            }
        }
        self.count += 1;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        self.producer
            .flush(Duration::from_secs(60))
            .map_err(|e| IngestError::DeadLetter(format!("flushing to {}: {e}", self.topic)))?;
        let ctx = self.producer.context();
        let failed = ctx.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let last = ctx.last_error.lock().expect("error lock").clone();
            return Err(IngestError::DeadLetter(format!(
                "{failed} dead letters were not delivered to {} ({}); no offset was committed past them, so nothing is lost: check that the topic exists and the broker is reachable, then run ingest again",
                self.topic,
                last.unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14.2: `kafka.group_instance_id` reaches librdkafka as `group.instance.id`; empty
    /// leaves membership dynamic.
    #[test]
    fn a_configured_instance_id_makes_the_consumer_a_static_member() {
        let mut s = Settings::defaults();
        assert_eq!(consumer_config(&s).get("group.instance.id"), None);
        s.kafka.group_instance_id = "ingest-2".into();
        assert_eq!(
            consumer_config(&s).get("group.instance.id"),
            Some("ingest-2")
        );
    }
}
