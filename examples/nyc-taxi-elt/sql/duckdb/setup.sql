-- NYC taxi ELT on DuckDB: the objects the ELT script fills.
-- A port of the setup in AWS's "event-driven ELT with Lambda and the Redshift Data API" sample.
-- Differences from the Redshift original: DuckDB has no SORTKEY (it keeps zone maps on every
-- column instead), no materialized views (the monthly aggregate is a table that the ELT script
-- rebuilds) and no stored procedures (the ELT steps are a script, run as one transaction).
-- Safe to run again: it changes nothing that exists.

CREATE TABLE IF NOT EXISTS nyc_yellow_taxi (
    pickup_date      DATE,
    pickup_datetime  TIMESTAMP,
    dropoff_datetime TIMESTAMP,
    ratecode         SMALLINT,
    passenger_count  SMALLINT,
    trip_distance    FLOAT4,
    fare_amount      FLOAT4,
    total_amount     FLOAT4,
    payment_type     SMALLINT,
    vendorid         VARCHAR(20)
);

CREATE TABLE IF NOT EXISTS nyc_yellow_taxi_volume_analysis AS
SELECT DATE_TRUNC('month', pickup_date)   AS pickup_month,
       ROUND(AVG(trip_distance), 2)        AS avg_distance,
       ROUND(AVG(fare_amount), 2)          AS avg_fare,
       COUNT(1)                            AS total_trips,
       SUM(trip_distance)                  AS total_distance_per_month,
       SUM(fare_amount)                    AS total_fare_per_month
FROM nyc_yellow_taxi
GROUP BY 1;
