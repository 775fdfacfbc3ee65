-- The ELT process on DuckDB: what run_elt_process() does on Redshift, as one script.
-- sqltide runs a script as one batch in one transaction: if any step fails, nothing changes.
-- :source is the raw trip file (or a glob such as 'data/*.psv'), pipe-delimited, no header.

-- TRUNCATE TABLE nyc_yellow_taxi, inside the transaction
DELETE FROM nyc_yellow_taxi;

INSERT INTO nyc_yellow_taxi
SELECT *
FROM read_csv(:source, delim = '|', header = false, columns = {
    'pickup_date': 'DATE',
    'pickup_datetime': 'TIMESTAMP',
    'dropoff_datetime': 'TIMESTAMP',
    'ratecode': 'SMALLINT',
    'passenger_count': 'SMALLINT',
    'trip_distance': 'FLOAT4',
    'fare_amount': 'FLOAT4',
    'total_amount': 'FLOAT4',
    'payment_type': 'SMALLINT',
    'vendorid': 'VARCHAR'
});

-- REFRESH MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis
DELETE FROM nyc_yellow_taxi_volume_analysis;

INSERT INTO nyc_yellow_taxi_volume_analysis
SELECT DATE_TRUNC('month', pickup_date),
       ROUND(AVG(trip_distance), 2),
       ROUND(AVG(fare_amount), 2),
       COUNT(1),
       SUM(trip_distance),
       SUM(fare_amount)
FROM nyc_yellow_taxi
GROUP BY 1;
