import os
from pathlib import Path

import boto3
import sqlparse
from sqltide.workflows import (
    DurableContext,
    StepContext,
    durable_execution,
    durable_step,
)
from sqltide.workflows.config import Duration

# 環境変数
WORKGROUP_NAME = os.environ.get("WORKGROUP_NAME")
DATABASE_NAME = os.environ.get("DATABASE_NAME")

# Redshift Data APIクライアント
redshift_data = boto3.client("redshift-data")


def load_sql_statements(sql_file_path: str) -> list[str]:
    """SQLファイルを読み込み、個別のステートメントに分割する

    Args:
        sql_file_path (str): SQLファイルのパス

    Returns:
        list[str]: 分割されたSQLステートメントのリスト

    Raises:
        FileNotFoundError: SQLファイルが存在しない場合
    """
    with open(sql_file_path, "r", encoding="utf-8") as f:
        sql_content = f.read()

    # sqlparseでSQLを分割
    statements = sqlparse.split(sql_content)

    # 空のステートメントを除外
    return [stmt.strip() for stmt in statements if stmt.strip()]


@durable_step
def execute_batch_query(step_context: StepContext, statements: list) -> str:
    """Redshiftにバッチクエリを実行する

    Args:
        step_context (StepContext): Durable Functionsのステップコンテキスト
        statements (list): 実行するSQLステートメントのリスト

    Returns:
        str: クエリ実行ID
    """
    step_context.logger.info(f"Executing batch query with {len(statements)} statements")

    response = redshift_data.batch_execute_statement(
        WorkgroupName=WORKGROUP_NAME,
        Database=DATABASE_NAME,
        Sqls=statements,
    )

    query_id = response["Id"]
    step_context.logger.info(f"Batch query started with ID: {query_id}")
    return query_id


@durable_step
def check_query_status(step_context: StepContext, query_id: str) -> dict:
    """クエリの実行状態を確認する

    Args:
        step_context (StepContext): Durable Functionsのステップコンテキスト
        query_id (str): クエリ実行ID

    Returns:
        dict: クエリ状態情報
    """
    step_context.logger.info(f"Checking query status for ID: {query_id}")

    response = redshift_data.describe_statement(Id=query_id)
    status = response["Status"]

    step_context.logger.info(f"Query status: {status}")

    if status in ("FAILED", "ABORTED"):
        error_message = response.get("Error", "Unknown error")
        raise Exception(f"Query failed with status {status}: {error_message}")

    return {"status": status, "completed": status == "FINISHED"}


@durable_execution
def lambda_handler(event: dict, context: DurableContext) -> dict:
    """SQLファイル内の全ステートメントをバッチ実行するLambdaハンドラー

    Args:
        event (dict): Lambdaイベント
        context (DurableContext): Durable Functionsのコンテキスト

    Returns:
        dict: 実行結果を含むレスポンス
    """
    # SQLファイルのパスを取得(デフォルトは同ディレクトリのquery.sql)
    sql_file_path = event.get(
        "sql_file_path",
        str(Path(__file__).parent / "query.sql")
    )

    statements = load_sql_statements(sql_file_path)
    context.logger.info(f"Loaded {len(statements)} statements from {sql_file_path}")

    # バッチでクエリ実行
    query_id = context.step(execute_batch_query(statements))
    context.logger.info(f"Batch query submitted with ID: {query_id}")

    # ポーリングでクエリ完了を待機(10秒間隔、最大360回 = 1時間)
    max_attempts = 360
    for attempt in range(max_attempts):
        status_result = context.step(check_query_status(query_id))

        if status_result["completed"]:
            context.logger.info("Batch query completed successfully")
            break

        # 10秒待機
        context.wait(Duration.from_seconds(10))
    else:
        raise Exception(f"Query timed out after {max_attempts * 10} seconds")

    return {
        "statusCode": 200,
        "body": {
            "message": "All queries executed successfully",
            "query_id": query_id,
            "statement_count": len(statements),
            "status": status_result["status"],
        },
    }
