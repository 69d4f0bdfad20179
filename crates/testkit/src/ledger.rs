//! The ownership ledger's table in moto's DynamoDB, created from
//! template.yaml's `LedgerTable` (its keys, indexes and TTL attribute), so
//! the tests run against the schema the stack deploys.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chime_sync_aws::LedgerTable;
use serde_yaml::Value;

use crate::moto::Moto;
use crate::workspace_root;

/// `LedgerTable`'s `Properties` in template.yaml.
pub fn template_properties() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml"))
        .expect("template.yaml is readable");
    let template: Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    template["Resources"]["LedgerTable"]["Properties"].clone()
}

fn keys(schema: &Value) -> Vec<KeySchemaElement> {
    schema
        .as_sequence()
        .expect("a KeySchema list")
        .iter()
        .map(|k| {
            let kind = match k["KeyType"].as_str() {
                Some("HASH") => KeyType::Hash,
                _ => KeyType::Range,
            };
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().expect("a key name"))
                .key_type(kind)
                .build()
                .expect("a key")
        })
        .collect()
}

/// Create the ledger table `name` in `moto` as template.yaml declares it.
pub async fn create_ledger_table(moto: &Moto, name: &str) -> LedgerTable {
    let props = template_properties();
    let client = Client::new(&moto.sdk_config());
    let attributes: Vec<AttributeDefinition> = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().expect("a name"))
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("an attribute")
        })
        .collect();
    let indexes: Vec<GlobalSecondaryIndex> = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GlobalSecondaryIndexes")
        .iter()
        .map(|i| {
            GlobalSecondaryIndex::builder()
                .index_name(i["IndexName"].as_str().expect("an index name"))
                .set_key_schema(Some(keys(&i["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("an index")
        })
        .collect();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(keys(&props["KeySchema"])))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .expect("moto creates the ledger table");
    let ttl = props["TimeToLiveSpecification"]["AttributeName"]
        .as_str()
        .expect("a TTL attribute");
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .expect("a TTL specification"),
        )
        .send()
        .await
        .expect("moto sets the TTL");
    LedgerTable::from_client(client, name)
}
