//! Evaluation: ranking, calibration and fairness metrics, and the temporal back-test.

pub mod backtest;
pub mod promotion;
pub mod report;
