#!/usr/bin/env bash
# The aws CLI's dynamodb commands against an endpoint: create-table, wait table-exists, put-item,
# get-item, query, scan, update-item, delete-item, delete-table, wait table-not-exists; every output
# is compared with jq.
#
# Usage: aws_cli.sh ENDPOINT_URL
set -euo pipefail

endpoint=${1:?usage: aws_cli.sh ENDPOINT_URL}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_PAGER=""
table="cli-$(head -c 5 /dev/urandom | od -An -tx1 | tr -d ' \n')"
checks=0

ddb() { aws --endpoint-url "$endpoint" --output json dynamodb "$@"; }

# expect NAME JQ_FILTER JSON: the filter must print true for the JSON.
expect() {
  local name=$1 filter=$2 json=$3
  if [[ $(jq -e "$filter" <<<"$json" 2>/dev/null) != "true" ]]; then
    echo "FAIL $name: $filter on $json" >&2
    exit 1
  fi
  checks=$((checks + 1))
}

# expect_error NAME CODE CMD...: the command must fail and name this error code on stderr.
expect_error() {
  local name=$1 code=$2
  shift 2
  local err
  if err=$("$@" 2>&1 >/dev/null); then
    echo "FAIL $name: expected $code, command succeeded" >&2
    exit 1
  fi
  if [[ $err != *"($code)"* ]]; then
    echo "FAIL $name: expected $code, got: $err" >&2
    exit 1
  fi
  checks=$((checks + 1))
}

cleanup() { ddb delete-table --table-name "$table" >/dev/null 2>&1 || true; }
trap cleanup EXIT

out=$(ddb create-table --table-name "$table" \
  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=N \
  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
  --billing-mode PAY_PER_REQUEST)
expect create_table.name ".TableDescription.TableName == \"$table\"" "$out"
expect create_table.billing '.TableDescription.BillingModeSummary.BillingMode == "PAY_PER_REQUEST"' "$out"

ddb wait table-exists --table-name "$table"
out=$(ddb describe-table --table-name "$table")
expect wait.table_exists '.Table.TableStatus == "ACTIVE"' "$out"
expect describe.key_schema '[.Table.KeySchema[] | .KeyType] == ["HASH", "RANGE"]' "$out"

out=$(ddb list-tables)
expect list_tables.contains "any(.TableNames[]; . == \"$table\")" "$out"

for i in 1 2 3 4 5; do
  ddb put-item --table-name "$table" \
    --item "{\"pk\":{\"S\":\"user\"},\"sk\":{\"N\":\"$i\"},\"name\":{\"S\":\"n$i\"},\"tags\":{\"SS\":[\"a\",\"b\"]}}"
done
ddb put-item --table-name "$table" --item '{"pk":{"S":"other"},"sk":{"N":"1"},"flag":{"BOOL":true}}'
checks=$((checks + 1))

out=$(ddb put-item --table-name "$table" --item '{"pk":{"S":"other"},"sk":{"N":"1"},"flag":{"BOOL":false}}' \
  --return-values ALL_OLD)
expect put_item.all_old '.Attributes.flag.BOOL == true' "$out"

out=$(ddb get-item --table-name "$table" --key '{"pk":{"S":"user"},"sk":{"N":"3"}}' --consistent-read)
expect get_item.item '.Item.name.S == "n3" and .Item.sk.N == "3"' "$out"
expect get_item.string_set '(.Item.tags.SS | sort) == ["a", "b"]' "$out"
out=$(ddb get-item --table-name "$table" --key '{"pk":{"S":"user"},"sk":{"N":"99"}}')
# The CLI prints nothing for a response without Item.
expect get_item.missing 'has("Item") | not' "${out:-"{}"}"

out=$(ddb query --table-name "$table" --key-condition-expression "pk = :p AND sk BETWEEN :lo AND :hi" \
  --expression-attribute-values '{":p":{"S":"user"},":lo":{"N":"2"},":hi":{"N":"4"}}')
expect query.between '[.Items[].sk.N] == ["2", "3", "4"]' "$out"
expect query.count '.Count == 3 and .ScannedCount == 3' "$out"
out=$(ddb query --table-name "$table" --key-condition-expression "pk = :p" \
  --expression-attribute-values '{":p":{"S":"user"}}' --no-scan-index-forward --max-items 2)
expect query.backwards_paged_by_cli '[.Items[].sk.N] == ["5", "4"] and has("NextToken")' "$out"
out=$(ddb query --table-name "$table" --key-condition-expression "pk = :p" \
  --expression-attribute-values '{":p":{"S":"user"}}' --page-size 2)
expect query.cli_follows_pages '[.Items[].sk.N] == ["1", "2", "3", "4", "5"]' "$out"
out=$(ddb query --table-name "$table" --key-condition-expression "pk = :p" \
  --expression-attribute-values '{":p":{"S":"user"}}' --select COUNT)
expect query.select_count '.Count == 5 and (has("Items") | not)' "$out"

out=$(ddb scan --table-name "$table")
expect scan.all '.Count == 6 and (.Items | length) == 6' "$out"
out=$(ddb scan --table-name "$table" --filter-expression "attribute_exists(flag)")
expect scan.filter '.Count == 1 and .Items[0].pk.S == "other" and .ScannedCount == 6' "$out"
out=$(ddb scan --table-name "$table" --page-size 1)
expect scan.cli_follows_pages '(.Items | length) == 6' "$out"

out=$(ddb update-item --table-name "$table" --key '{"pk":{"S":"user"},"sk":{"N":"1"}}' \
  --update-expression "SET #n = :v ADD hits :one" --expression-attribute-names '{"#n":"name"}' \
  --expression-attribute-values '{":v":{"S":"renamed"},":one":{"N":"0.5"}}' --return-values ALL_NEW)
expect update_item.all_new '.Attributes.name.S == "renamed" and .Attributes.hits.N == "0.5"' "$out"

expect_error put_item.condition_failed ConditionalCheckFailedException \
  ddb put-item --table-name "$table" --item '{"pk":{"S":"user"},"sk":{"N":"1"}}' \
  --condition-expression "attribute_not_exists(pk)"
expect_error get_item.bad_key ValidationException \
  ddb get-item --table-name "$table" --key '{"pk":{"S":"user"}}'

out=$(ddb delete-item --table-name "$table" --key '{"pk":{"S":"user"},"sk":{"N":"2"}}' --return-values ALL_OLD)
expect delete_item.all_old '.Attributes.name.S == "n2"' "$out"
out=$(ddb scan --table-name "$table" --select COUNT)
expect delete_item.gone '.Count == 5' "$out"

out=$(ddb delete-table --table-name "$table")
expect delete_table.name ".TableDescription.TableName == \"$table\"" "$out"
ddb wait table-not-exists --table-name "$table"
checks=$((checks + 1))
expect_error delete_table.not_found ResourceNotFoundException ddb describe-table --table-name "$table"
trap - EXIT

echo "ok $checks checks"
