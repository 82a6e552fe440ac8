-- Training labels (SPEC §3): every past referral whose visit outcome was decided before
-- {before}, with the date it was referred (features are computed as of that date).
--
-- A referral can have several outcome records (a correction, say): the latest decision counts.
-- `supported` and `declined_support` confirm a crisis (label 1), `no_crisis` does not (0);
-- `unreachable` and `moved` carry no label and are left out. A referral a correction withdrew
-- (`withdrawn_referrals`) still labels its household if the visit happened.
WITH latest AS (
    SELECT referral_id, outcome, decided_on FROM (
        SELECT referral_id, outcome, decided_on,
               row_number() OVER (PARTITION BY referral_id
                                  ORDER BY decided_on DESC, ingested_at DESC) AS nth
        FROM outcomes
        WHERE decided_on < {before}
    ) WHERE nth = 1
)
SELECT r.household_id, r.as_of, r.referral_id, r.district_code, l.decided_on,
       CASE WHEN l.outcome IN ('supported', 'declined_support') THEN 1 ELSE 0 END AS label
FROM (SELECT household_id, as_of, referral_id, district_code FROM referrals
      UNION ALL
      SELECT household_id, as_of, referral_id, district_code FROM withdrawn_referrals) r
JOIN latest l ON l.referral_id = r.referral_id
WHERE r.as_of < {before}
  AND l.outcome IN ('supported', 'declined_support', 'no_crisis')
ORDER BY r.as_of, r.referral_id
