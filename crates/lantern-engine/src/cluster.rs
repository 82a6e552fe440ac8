//! Lantern on an Apache DataFusion Ballista cluster (cargo feature `ballista`).
//!
//! Ballista is DataFusion's distributed engine: a *scheduler* takes a query's logical plan,
//! splits its physical plan into stages at every shuffle, and hands the stages' tasks to
//! *executors*, which read the data, run their part and serve the results to the next stage (or
//! to the client) over Arrow Flight. Lantern does not reimplement any of it; it runs Ballista's
//! own scheduler and executor from this crate, so one build serves every role
//! (`lantern cluster scheduler`, `lantern cluster executor`) and each role knows Lantern's codec.
//!
//! **The codec.** A plan crosses process boundaries as protobuf (datafusion-proto). Tables on
//! files (the lake, the signal state, a slice's cohort, which the feature engine writes under
//! `<data>/.scratch/` for a cluster) have a standard encoding: their paths. Lantern's in-memory
//! tables (the empty stand-ins for data not there yet: no referral lists, no files of a kind)
//! have none, so [`LanternCodec`] ships them inside the plan as Arrow IPC. Every process that
//! decodes plans (the scheduler; the executors for completeness) must use it, which is why the
//! roles are started from `lantern`, not from Ballista's stock binaries.
//!
//! **What must be shared.** Executors read the tables by path: the data directory must be the
//! same path on every executor (one machine, a shared file system), or an object store.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

use crate::engine::EngineError;

/// Marks a [`MemTable`] encoded by [`LanternCodec`]; anything else goes to Ballista's codec.
const MEM_TABLE: &[u8] = b"lantern-memtable-v1\0";

/// Ballista's logical codec, plus in-memory tables (a slice's cohort) as Arrow IPC.
#[derive(Debug, Default)]
pub struct LanternCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LanternCodec {
    pub fn shared() -> Arc<dyn LogicalExtensionCodec> {
        Arc::new(LanternCodec::default())
    }
}

fn encode_mem_table(table: &MemTable, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MEM_TABLE);
    buf.extend_from_slice(&(table.batches.len() as u32).to_le_bytes());
    for partition in &table.batches {
        let batches = partition.try_read().map_err(|_| {
            DataFusionError::Internal(
                "an in-memory table is being written while a plan is encoded".into(),
            )
        })?;
        let mut ipc = Vec::new();
        {
            let mut writer = StreamWriter::try_new(&mut ipc, &table.schema())?;
            for b in batches.iter() {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        buf.extend_from_slice(&(ipc.len() as u64).to_le_bytes());
        buf.extend_from_slice(&ipc);
    }
    Ok(())
}

fn decode_mem_table(mut buf: &[u8], schema: SchemaRef) -> Result<MemTable> {
    let truncated =
        || DataFusionError::Internal("an in-memory table in the plan is truncated".into());
    let mut take = |n: usize| -> Result<&[u8]> {
        if buf.len() < n {
            return Err(truncated());
        }
        let (head, rest) = buf.split_at(n);
        buf = rest;
        Ok(head)
    };
    let partitions = u32::from_le_bytes(take(4)?.try_into().map_err(|_| truncated())?);
    let mut out = Vec::with_capacity(partitions as usize);
    for _ in 0..partitions {
        let len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| truncated())?) as usize;
        let reader = StreamReader::try_new(Cursor::new(take(len)?), None)?;
        let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>()?;
        out.push(batches);
    }
    if out.is_empty() {
        out.push(vec![]);
    }
    MemTable::try_new(schema, out)
}

impl LogicalExtensionCodec for LanternCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match buf.strip_prefix(MEM_TABLE) {
            Some(rest) => Ok(Arc::new(decode_mem_table(rest, schema)?)),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<MemTable>() {
            Some(table) => encode_mem_table(table, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// The DataFusion settings every role of the cluster runs with (client, scheduler, executors),
/// around two defects of Ballista 55.0.0 found here, each of which left a query waiting forever
/// instead of failing:
/// - its adaptive planner stalls on stages it wants to cancel ("stages to be cancelled but its
///   not implemented");
/// - its stage planner swaps hash-join inputs after DataFusion has built dynamic filters for
///   them ("Cannot swap HashJoinExec inputs after dynamic filters have been constructed"), and
///   rebuilding a task's plan on the executor trips TopK's dynamic filter. Dynamic filter
///   pushdown only prunes rows early; results are the same without it.
pub fn cluster_config(config: SessionConfig) -> SessionConfig {
    let mut config = config.with_ballista_adaptive_query_planner(false);
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    config
}

/// A session whose plans run on the cluster of the scheduler at `scheduler` (`host:port`).
pub async fn remote_session(
    scheduler: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> std::result::Result<SessionContext, EngineError> {
    let config =
        cluster_config(config).with_ballista_logical_extension_codec(LanternCodec::shared());
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    SessionContext::remote_with_state(&format!("df://{scheduler}"), state)
        .await
        .map_err(|e| EngineError::Connect {
            scheduler: scheduler.to_string(),
            message: e.to_string(),
        })
}

/// Whether the scheduler at `host:port` accepts connections (within 5 s). Ballista connects
/// only when a query runs, and a failure then reads like a query's; this says it at once.
pub fn reachable(scheduler: &str) -> std::result::Result<(), EngineError> {
    probe(scheduler).map_err(|message| EngineError::Connect {
        scheduler: scheduler.to_string(),
        message,
    })
}

fn probe(scheduler: &str) -> std::result::Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let addrs = scheduler.to_socket_addrs().map_err(|e| e.to_string())?;
    let mut last = String::from("the name resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Runs a Ballista scheduler on `bind` until the process ends.
pub async fn run_scheduler(
    bind: SocketAddr,
    lake: Option<crate::lake::store::Location>,
) -> std::result::Result<(), ballista_core::error::BallistaError> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    // The scheduler plans, and planning lists a table's files: it needs the lake's bucket too.
    let lake_store = lake_store(lake.as_ref())?;
    let session_builder: ballista_scheduler::scheduler_server::SessionBuilder =
        Arc::new(move |config| {
            let state = ballista_core::utils::default_session_builder(config)?;
            if let Some((url, store)) = &lake_store {
                state
                    .runtime_env()
                    .register_object_store(url.as_ref(), store.clone());
            }
            Ok(state)
        });
    let config = SchedulerConfig {
        override_session_builder: Some(session_builder),
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        override_logical_codec: Some(LanternCodec::shared()),
        override_config_producer: Some(Arc::new(|| {
            cluster_config(ballista_core::utils::default_config_producer())
        })),
        ..Default::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config)).await
}

/// The client of the lake's bucket and its URL, for a lake in an object store: registered in
/// each cluster role's runtime, so that the plans' `s3://` tables resolve there as they do on
/// the client.
type LakeStore = (
    datafusion::execution::object_store::ObjectStoreUrl,
    Arc<dyn object_store::ObjectStore>,
);

fn lake_store(
    lake: Option<&crate::lake::store::Location>,
) -> std::result::Result<Option<LakeStore>, ballista_core::error::BallistaError> {
    let Some(crate::lake::store::Location::S3 {
        bucket, options, ..
    }) = lake
    else {
        return Ok(None);
    };
    let store = crate::lake::store::s3_store(bucket, options)
        .map_err(|e| ballista_core::error::BallistaError::General(e.to_string()))?;
    let url = datafusion::execution::object_store::ObjectStoreUrl::parse(format!("s3://{bucket}"))?;
    tracing::info!(bucket = %bucket, "this cluster role reads the object-store lake");
    Ok(Some((url, store)))
}

/// One executor's settings.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// The scheduler's `host:port`.
    pub scheduler: SocketAddr,
    /// Address the executor listens on; its Flight port serves task results.
    pub bind: std::net::IpAddr,
    pub flight_port: u16,
    pub grpc_port: u16,
    /// Tasks it runs at once (its cores).
    pub task_slots: usize,
    /// Where it keeps shuffle files between stages.
    pub work_dir: std::path::PathBuf,
    /// The lake, if it is in an object store: its bucket is registered in every task's
    /// runtime, so the plans' `s3://` tables resolve on this executor as on the client.
    pub lake: Option<crate::lake::store::Location>,
}

/// Runs a Ballista executor registered with the scheduler until the process ends.
pub async fn run_executor(
    settings: ExecutorSettings,
) -> std::result::Result<(), ballista_core::error::BallistaError> {
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let lake_store = lake_store(settings.lake.as_ref())?;
    let work_dir = settings.work_dir.to_string_lossy().into_owned();
    // Ballista's own runtime (shuffle spills under the work folder), plus the lake's bucket.
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_| {
        let env = RuntimeEnvBuilder::new()
            .with_temp_file_path(work_dir.clone())
            .build()?;
        if let Some((url, store)) = &lake_store {
            env.register_object_store(url.as_ref(), store.clone());
        }
        Ok(Arc::new(env))
    });
    let config = ExecutorProcessConfig {
        bind_host: settings.bind.to_string(),
        external_host: Some(settings.bind.to_string()),
        port: settings.flight_port,
        grpc_port: settings.grpc_port,
        scheduler_host: settings.scheduler.ip().to_string(),
        scheduler_port: settings.scheduler.port(),
        vcores: settings.task_slots.max(1),
        work_dir: Some(settings.work_dir.to_string_lossy().into_owned()),
        override_logical_codec: Some(LanternCodec::shared()),
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(Arc::new(|| {
            cluster_config(ballista_core::utils::default_config_producer())
        })),
        ..Default::default()
    };
    start_executor_process(Arc::new(config)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    /// A cohort survives the codec value for value, partitions and all, and a table the codec
    /// does not know is left to Ballista's.
    #[tokio::test]
    async fn an_in_memory_table_travels_through_the_codec() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("household_id", DataType::Utf8, false),
            Field::new("n", DataType::Int32, true),
        ]));
        let batch = |ids: Vec<&str>, n: Vec<Option<i32>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(Int32Array::from(n)),
                ],
            )
            .unwrap()
        };
        let parts = vec![
            vec![batch(vec!["H-1", "H-2"], vec![Some(1), None])],
            vec![],
            vec![
                batch(vec!["H-3"], vec![Some(3)]),
                batch(vec!["H-4"], vec![Some(4)]),
            ],
        ];
        let table = Arc::new(MemTable::try_new(schema.clone(), parts.clone()).unwrap());
        let codec = LanternCodec::default();
        let mut buf = Vec::new();
        codec
            .try_encode_table_provider(&TableReference::bare("cohort"), table, &mut buf)
            .unwrap();
        let ctx = SessionContext::new();
        let back = codec
            .try_decode_table_provider(
                &buf,
                &TableReference::bare("cohort"),
                schema.clone(),
                &ctx.task_ctx(),
            )
            .unwrap();
        let back = back.downcast_ref::<MemTable>().unwrap();
        assert_eq!(back.batches.len(), 3);
        for (got, want) in back.batches.iter().zip(&parts) {
            assert_eq!(&*got.read().await, want);
        }
        let cut = &buf[..buf.len() - 5];
        let err = codec
            .try_decode_table_provider(
                cut,
                &TableReference::bare("cohort"),
                schema,
                &ctx.task_ctx(),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("truncated") || err.to_string().contains("IPC"),
            "{err}"
        );
    }
}
