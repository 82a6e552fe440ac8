//! The lake as SQL tables in a DataFusion session: one table per lake table, under the same
//! name, with the month folder as a `month` partition column (`'2026-10'`), so a query that
//! filters on it reads only the months it needs; plus `households` and `referrals`
//! (see [`super::reference`]).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::reference::{
    households_path, households_schema, referral_nights, referrals_root, referrals_schema,
};
use super::{Lake, Table};

/// Registers every lake table in `ctx`. Tables with no files yet are registered empty.
pub async fn register(ctx: &SessionContext, lake: &Lake) -> Result<(), DataFusionError> {
    for table in Table::ALL {
        let url = lake
            .table_url(ctx, table)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("month".to_string(), DataType::Utf8)]);
        ctx.register_listing_table(table.name(), url, options, Some(table.schema()), None)
            .await?;
    }
    Ok(())
}

/// Registers the tables of `lake` and the `households` and `referrals` of its data directory.
pub async fn register_all(ctx: &SessionContext, lake: &Lake) -> Result<(), DataFusionError> {
    register(ctx, lake).await?;
    let data_dir = lake.data_dir();
    let households = households_path(data_dir);
    if households.exists() {
        ctx.register_parquet(
            "households",
            households.to_string_lossy().as_ref(),
            ParquetReadOptions::default().schema(&households_schema()),
        )
        .await?;
    } else {
        register_empty(ctx, "households", households_schema())?;
    }
    let has_nights = !referral_nights(data_dir)
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .is_empty();
    register_lists(ctx, data_dir, "referrals", "referrals.parquet", has_nights).await?;
    // Referrals a correction withdrew: not history (no cool-down, no features), but their
    // outcomes are still labels.
    let has_withdrawn = super::entries(&referrals_root(data_dir))
        .map(|dirs| dirs.iter().any(|d| d.join("withdrawn.parquet").exists()))
        .unwrap_or(false);
    register_lists(
        ctx,
        data_dir,
        "withdrawn_referrals",
        "withdrawn.parquet",
        has_withdrawn,
    )
    .await?;
    Ok(())
}

/// Registers every `<file>` under the referral folder as the table `name` (the referral
/// schema), or an empty table when there is none yet.
async fn register_lists(
    ctx: &SessionContext,
    data_dir: &Path,
    name: &str,
    file: &str,
    any: bool,
) -> Result<(), DataFusionError> {
    if !any {
        return register_empty(ctx, name, referrals_schema());
    }
    let root = referrals_root(data_dir).canonicalize()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(file);
    ctx.register_listing_table(
        name,
        format!("{}/", root.display()),
        options,
        Some(referrals_schema()),
        None,
    )
    .await
}

fn register_empty(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
) -> Result<(), DataFusionError> {
    ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
    Ok(())
}
