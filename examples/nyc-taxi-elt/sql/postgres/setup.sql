-- NYC taxi ELT on PostgreSQL: the table, the monthly aggregate as a materialized view, and the
-- ELT procedure. A port of the setup in AWS's "event-driven ELT with Lambda and the Redshift
-- Data API" sample. Differences from the Redshift original:
--   * no SORTKEY(pickup_date): PostgreSQL has no sort keys (an index or BRIN would do that job);
--   * ROUND(AVG(x)::numeric, 2): PostgreSQL's two-argument ROUND takes numeric, not float;
--   * COPY reads a file on the database server instead of an S3 prefix, and the procedure takes
--     its path as an argument. Reading server files needs superuser or pg_read_server_files,
--     and the file must be readable by the PostgreSQL server's operating-system user.
-- Safe to run again.

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

CREATE MATERIALIZED VIEW IF NOT EXISTS nyc_yellow_taxi_volume_analysis AS
SELECT DATE_TRUNC('mon', pickup_date)         AS pickup_month,
       ROUND(AVG(trip_distance)::numeric, 2)  AS avg_distance,
       ROUND(AVG(fare_amount)::numeric, 2)    AS avg_fare,
       COUNT(1)                               AS total_trips,
       SUM(trip_distance)                     AS total_distance_per_month,
       SUM(fare_amount)                       AS total_fare_per_month
FROM nyc_yellow_taxi
GROUP BY 1;

CREATE OR REPLACE PROCEDURE run_elt_process(source text) AS $$
BEGIN
  TRUNCATE TABLE nyc_yellow_taxi;
  EXECUTE format('COPY nyc_yellow_taxi FROM %L WITH (DELIMITER %L)', source, '|');
  REFRESH MATERIALIZED VIEW nyc_yellow_taxi_volume_analysis;
END;
$$ LANGUAGE plpgsql;
