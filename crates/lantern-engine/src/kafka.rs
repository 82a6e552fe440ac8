//! Kafka client settings shared by every producer and consumer, and the in-process mock cluster
//! the demo and tests use.

use rdkafka::config::ClientConfig;

use crate::config::KafkaSettings;

/// The base client configuration: brokers, client id, and every `[kafka.properties]` entry
/// passed through verbatim (security settings live there).
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.brokers)
        .set("client.id", &settings.client_id);
    for (k, v) in &settings.properties {
        c.set(k, v);
    }
    c
}

/// A producer configuration that never duplicates or reorders on retry (idempotent producer),
/// and waits for all in-sync replicas.
pub fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut c = client_config(settings);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("compression.type", "lz4");
    // Explicit properties win over these defaults.
    for (k, v) in &settings.properties {
        c.set(k, v);
    }
    c
}

/// Why producing a file to a topic failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Produces every line of an NDJSON file to `topic`, keyed by its `household_id` when it has
/// one (SPEC §1: key = household_id, so one household's signals stay in order on one
/// partition). Lines are sent as they are, valid or not: this is how a sending agency's
/// producer behaves, and what the demo and tests use to fill topics. Returns the lines sent.
pub fn produce_file(
    producer: &rdkafka::producer::BaseProducer,
    topic: &str,
    path: &std::path::Path,
) -> Result<u64, ProduceError> {
    use rdkafka::producer::{BaseRecord, Producer};
    use std::io::BufRead;
    let read_err = |source| ProduceError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut n = 0u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(read_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let key = household_key(&line);
        let mut record = BaseRecord::to(topic).payload(line.as_bytes());
        if let Some(k) = key.as_deref() {
            record = record.key(k);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    producer.poll(std::time::Duration::from_millis(50));
                    record = r;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        n += 1;
        if n.is_multiple_of(10_000) {
            producer.poll(std::time::Duration::ZERO);
        }
    }
    producer.flush(std::time::Duration::from_secs(120))?;
    Ok(n)
}

/// The `household_id` of a JSON line, without a full parse when the line is well formed.
fn household_key(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Key {
        household_id: Option<String>,
    }
    serde_json::from_str::<Key>(line).ok()?.household_id
}

/// How many partitions per topic the mock cluster needs for a simulated population.
///
/// librdkafka's mock cluster is no durable log: each partition keeps only its newest 5 MB of
/// (compressed) batches and silently drops older ones. Simulated signals take about 80 bytes
/// per household and month on the arrears topic, and compress to about a fifth, so a
/// partition is given at most 12 MB of raw messages: less than half of what it holds.
pub fn mock_partitions_for(households: u64, months: u32) -> i32 {
    const BYTES_PER_HOUSEHOLD_MONTH: u64 = 80;
    const RAW_BYTES_PER_PARTITION: u64 = 12 << 20;
    let bytes = households * u64::from(months) * BYTES_PER_HOUSEHOLD_MONTH;
    bytes.div_ceil(RAW_BYTES_PER_PARTITION).clamp(3, 1_000) as i32
}

/// An in-process Kafka (librdkafka's mock cluster, the real protocol over loopback) with every
/// configured topic created with `partitions` partitions, and `settings` pointed at it with
/// short group sessions, so a member that leaves is replaced in seconds. For `lantern demo`
/// and the tests.
pub fn start_mock_cluster(
    settings: &mut crate::config::Settings,
    group_id: &str,
    partitions: i32,
) -> Result<
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    rdkafka::error::KafkaError,
> {
    let cluster = rdkafka::mocking::MockCluster::new(1)?;
    settings.kafka.brokers = cluster.bootstrap_servers();
    settings.kafka.group_id = group_id.to_string();
    let props = &mut settings.kafka.properties;
    props.insert("session.timeout.ms".into(), "6000".into());
    props.insert("heartbeat.interval.ms".into(), "500".into());
    for (_, t) in settings.topics.all() {
        cluster.create_topic(t, partitions, 1)?;
    }
    Ok(cluster)
}

/// Calls `f` with every message of `topic`, from the beginning of each partition to its high
/// watermark when the call started, then returns. For readers that need the whole topic once
/// (a district's intake, the dead letters), without a consumer group's offsets.
pub fn read_to_end<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    topic: &str,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    use std::time::Duration;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut remaining = std::collections::HashSet::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if high > low {
            assignment.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
            remaining.insert((p, high));
        }
    }
    if remaining.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    let mut idle = 0;
    while !remaining.is_empty() && idle < 100 {
        match consumer.poll(Duration::from_millis(100)) {
            None => idle += 1,
            Some(Err(e)) => return Err(e),
            Some(Ok(m)) => {
                idle = 0;
                let (p, offset) = (m.partition(), m.offset());
                remaining.retain(|&(rp, high)| !(rp == p && offset + 1 >= high));
                f(&m);
            }
        }
    }
    Ok(())
}
