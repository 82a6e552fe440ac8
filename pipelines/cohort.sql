-- Who is screened on a night: every household with at least one signal known by {window_end}
-- (observed and reported on or before it) and observed in the look-back window.
-- Placeholders as in features.sql.
SELECT DISTINCT household_id
FROM (
    SELECT household_id, observed_on, reported_on FROM utility_arrears_events
    WHERE observed_on > {window_start}
    UNION ALL
    SELECT household_id, observed_on, reported_on FROM council_report_events
    WHERE observed_on > {window_start}
    UNION ALL
    SELECT household_id, observed_on, reported_on FROM service_gap_events
    WHERE observed_on > {window_start}
) e
WHERE e.observed_on > {window_start} AND e.observed_on <= {window_end}
  AND e.reported_on <= {window_end}
ORDER BY household_id
