//! The lake as SQL tables in a DataFusion session: one table per lake table, under the same
//! name, with the month folder as a `month` partition column (`'2026-10'`), so a query that
//! filters on it reads only the months it needs.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::{Lake, Table};

/// Registers every lake table in `ctx`. Tables with no files yet are registered empty.
pub async fn register(ctx: &SessionContext, lake: &Lake) -> Result<(), DataFusionError> {
    for table in Table::ALL {
        let dir = lake.table_dir(table);
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("month".to_string(), DataType::Utf8)]);
        ctx.register_listing_table(
            table.name(),
            format!("{}/", dir.display()),
            options,
            Some(table.schema()),
            None,
        )
        .await?;
    }
    Ok(())
}
