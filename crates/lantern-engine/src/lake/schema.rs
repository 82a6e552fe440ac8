//! The lake's tables and their Arrow schemas (documented for users in `docs/LAKE.md`).
//!
//! One table per signal kind, so every column has one meaning and one type (a wide table with
//! mostly-null columns would confuse pandas and SQL users alike), plus one for case outcomes.
//! Dates are Arrow `Date32`; the ingest time is a UTC millisecond timestamp.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use crate::contract::{CaseOutcome, Signal, SignalBody, SignalKind, Vocab};

/// A table of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    UtilityArrears,
    CouncilReport,
    ServiceGap,
    Outcomes,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::UtilityArrears,
        Table::CouncilReport,
        Table::ServiceGap,
        Table::Outcomes,
    ];

    /// The table's name, which is also its folder under the lake root and its name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::UtilityArrears => "utility_arrears",
            Table::CouncilReport => "council_report",
            Table::ServiceGap => "service_gap",
            Table::Outcomes => "outcomes",
        }
    }

    pub fn for_kind(kind: SignalKind) -> Table {
        match kind {
            SignalKind::UtilityArrears => Table::UtilityArrears,
            SignalKind::CouncilReport => Table::CouncilReport,
            SignalKind::ServiceGap => Table::ServiceGap,
        }
    }

    /// The columns that identify a record: a second record with the same values is the same
    /// event sent again.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Outcomes => &["referral_id", "outcome", "decided_on"],
            _ => &["event_id"],
        }
    }

    /// The date column that decides the month partition.
    pub fn partition_date_column(self) -> &'static str {
        match self {
            Table::Outcomes => "decided_on",
            _ => "observed_on",
        }
    }

    pub fn schema(self) -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let mut fields = match self {
            Table::Outcomes => vec![
                Field::new("referral_id", DataType::Utf8, false),
                Field::new("household_id", DataType::Utf8, false),
                Field::new("district_code", DataType::Utf8, false),
                Field::new("outcome", DataType::Utf8, false),
                Field::new("decided_on", DataType::Date32, false),
            ],
            _ => vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("source", DataType::Utf8, false),
                Field::new("household_id", DataType::Utf8, false),
                Field::new("district_code", DataType::Utf8, false),
                Field::new("dong_code", DataType::Utf8, true),
                Field::new("observed_on", DataType::Date32, false),
                // The knowledge date: `reported_on` as sent, or the ingest day when absent.
                Field::new("reported_on", DataType::Date32, false),
                // Whether the sender gave `reported_on` (false: it is the ingest day).
                Field::new("reported_on_given", DataType::Boolean, false),
            ],
        };
        match self {
            Table::UtilityArrears => fields.extend([
                Field::new("utility", DataType::Utf8, false),
                Field::new("months_overdue", DataType::Int32, false),
                Field::new("amount_krw", DataType::Int64, false),
                Field::new("service_cut", DataType::Boolean, false),
            ]),
            Table::CouncilReport => fields.extend([
                Field::new("reporter_role", DataType::Utf8, false),
                // Comma-separated, in the order sent: `isolation,food`.
                Field::new("concerns", DataType::Utf8, false),
                Field::new("urgency", DataType::Int32, false),
                Field::new("note", DataType::Utf8, true),
            ]),
            Table::ServiceGap => fields.extend([
                Field::new("program", DataType::Utf8, false),
                Field::new("gap", DataType::Utf8, false),
            ]),
            Table::Outcomes => {}
        }
        fields.push(Field::new("ingested_at", ts, false));
        Arc::new(Schema::new(fields))
    }
}

/// A validated record on its way into the lake, with what ingest adds to it.
#[derive(Debug, Clone, PartialEq)]
pub enum LakeRecord {
    Signal {
        signal: Signal,
        /// `reported_on`, or the ingest day.
        known_on: NaiveDate,
        ingested_at_ms: i64,
    },
    Outcome {
        outcome: CaseOutcome,
        ingested_at_ms: i64,
    },
}

impl LakeRecord {
    pub fn table(&self) -> Table {
        match self {
            LakeRecord::Signal { signal, .. } => Table::for_kind(signal.kind()),
            LakeRecord::Outcome { .. } => Table::Outcomes,
        }
    }

    /// The date that decides the month partition.
    pub fn partition_date(&self) -> NaiveDate {
        match self {
            LakeRecord::Signal { signal, .. } => signal.observed_on,
            LakeRecord::Outcome { outcome, .. } => outcome.decided_on,
        }
    }

    /// The fingerprint of [`LakeRecord::key`], without building the key for a signal.
    pub fn fingerprint(&self) -> u128 {
        match self {
            LakeRecord::Signal { signal, .. } => super::fingerprint(&signal.event_id),
            LakeRecord::Outcome { .. } => super::fingerprint(&self.key()),
        }
    }

    /// The identifying key, as the strings of [`Table::key_columns`] joined by 0x1F.
    pub fn key(&self) -> String {
        match self {
            LakeRecord::Signal { signal, .. } => signal.event_id.clone(),
            LakeRecord::Outcome { outcome, .. } => format!(
                "{}\u{1f}{}\u{1f}{}",
                outcome.referral_id,
                outcome.outcome.as_str(),
                days_since_epoch(outcome.decided_on)
            ),
        }
    }
}

/// Days since 1970-01-01, Arrow's `Date32`.
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// The date of an Arrow `Date32` value.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or(NaiveDate::MIN)
}

/// Builds one Arrow batch from records that all belong to `table`.
pub fn to_batch(table: Table, records: &[&LakeRecord]) -> Result<RecordBatch, ArrowError> {
    let n = records.len();
    let mut ingested = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut columns: Vec<ArrayRef> = Vec::new();
    if table == Table::Outcomes {
        let mut referral_id = StringBuilder::new();
        let mut household_id = StringBuilder::new();
        let mut district_code = StringBuilder::new();
        let mut outcome = StringBuilder::new();
        let mut decided_on = Date32Builder::with_capacity(n);
        for r in records {
            let LakeRecord::Outcome {
                outcome: o,
                ingested_at_ms,
            } = r
            else {
                return Err(ArrowError::InvalidArgumentError(
                    "a signal in the outcomes batch".into(),
                ));
            };
            referral_id.append_value(&o.referral_id);
            household_id.append_value(&o.household_id);
            district_code.append_value(&o.district_code);
            outcome.append_value(o.outcome.as_str());
            decided_on.append_value(days_since_epoch(o.decided_on));
            ingested.append_value(*ingested_at_ms);
        }
        columns.push(Arc::new(referral_id.finish()));
        columns.push(Arc::new(household_id.finish()));
        columns.push(Arc::new(district_code.finish()));
        columns.push(Arc::new(outcome.finish()));
        columns.push(Arc::new(decided_on.finish()));
    } else {
        let mut event_id = StringBuilder::new();
        let mut source = StringBuilder::new();
        let mut household_id = StringBuilder::new();
        let mut district_code = StringBuilder::new();
        let mut dong_code = StringBuilder::new();
        let mut observed_on = Date32Builder::with_capacity(n);
        let mut reported_on = Date32Builder::with_capacity(n);
        let mut reported_given = BooleanBuilder::with_capacity(n);
        // Kind-specific builders; only those of `table` get values.
        let mut s1 = StringBuilder::new();
        let mut s2 = StringBuilder::new();
        let mut i1 = Int32Builder::with_capacity(n);
        let mut i2 = Int64Builder::with_capacity(n);
        let mut b1 = BooleanBuilder::with_capacity(n);
        let mut note = StringBuilder::new();
        for r in records {
            let LakeRecord::Signal {
                signal: s,
                known_on,
                ingested_at_ms,
            } = r
            else {
                return Err(ArrowError::InvalidArgumentError(
                    "an outcome in a signal batch".into(),
                ));
            };
            if Table::for_kind(s.kind()) != table {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "a {} signal in the {} batch",
                    s.kind().as_str(),
                    table.name()
                )));
            }
            event_id.append_value(&s.event_id);
            source.append_value(&s.source);
            household_id.append_value(&s.household_id);
            district_code.append_value(&s.district_code);
            dong_code.append_option(s.dong_code.as_deref());
            observed_on.append_value(days_since_epoch(s.observed_on));
            reported_on.append_value(days_since_epoch(*known_on));
            reported_given.append_value(s.reported_on.is_some());
            ingested.append_value(*ingested_at_ms);
            match &s.body {
                SignalBody::UtilityArrears(a) => {
                    s1.append_value(a.utility.as_str());
                    i1.append_value(a.months_overdue as i32);
                    i2.append_value(a.amount_krw as i64);
                    b1.append_value(a.service_cut);
                }
                SignalBody::CouncilReport(c) => {
                    s1.append_value(c.reporter_role.as_str());
                    let joined: Vec<&str> = c.concerns.iter().map(|c| c.as_str()).collect();
                    s2.append_value(joined.join(","));
                    i1.append_value(c.urgency as i32);
                    note.append_option(c.note.as_deref());
                }
                SignalBody::ServiceGap(g) => {
                    s1.append_value(g.program.as_str());
                    s2.append_value(g.gap.as_str());
                }
            }
        }
        columns.push(Arc::new(event_id.finish()));
        columns.push(Arc::new(source.finish()));
        columns.push(Arc::new(household_id.finish()));
        columns.push(Arc::new(district_code.finish()));
        columns.push(Arc::new(dong_code.finish()));
        columns.push(Arc::new(observed_on.finish()));
        columns.push(Arc::new(reported_on.finish()));
        columns.push(Arc::new(reported_given.finish()));
        match table {
            Table::UtilityArrears => {
                columns.push(Arc::new(s1.finish()));
                columns.push(Arc::new(i1.finish()));
                columns.push(Arc::new(i2.finish()));
                columns.push(Arc::new(b1.finish()));
            }
            Table::CouncilReport => {
                columns.push(Arc::new(s1.finish()));
                columns.push(Arc::new(s2.finish()));
                columns.push(Arc::new(i1.finish()));
                columns.push(Arc::new(note.finish()));
            }
            Table::ServiceGap => {
                columns.push(Arc::new(s1.finish()));
                columns.push(Arc::new(s2.finish()));
            }
            Table::Outcomes => unreachable!("handled above"),
        }
    }
    columns.push(Arc::new(ingested.finish()));
    RecordBatch::try_new(table.schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date32_conversion_round_trips() {
        let d = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(days_since_epoch(d), 0);
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(date_from_days(days_since_epoch(d)), d);
    }

    #[test]
    fn every_table_has_its_key_and_partition_columns() {
        for t in Table::ALL {
            let s = t.schema();
            for k in t.key_columns() {
                assert!(s.field_with_name(k).is_ok(), "{} lacks {k}", t.name());
            }
            assert!(s.field_with_name(t.partition_date_column()).is_ok());
            assert!(s.field_with_name("ingested_at").is_ok());
        }
    }
}
