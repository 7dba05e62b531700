//! `template.yaml`, read as CloudFormation reads it, so the test bed builds what the stack
//! would: the rules, the queues, the topic and the function's environment.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::emulator::python;
use crate::repo_root;

/// The template as JSON (through cfn-lint's CloudFormation YAML loader).
pub fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| load("template.yaml"))
}

/// `spoke.yaml` (DESIGN §10) as JSON.
pub fn spoke() -> &'static Value {
    static SPOKE: OnceLock<Value> = OnceLock::new();
    SPOKE.get_or_init(|| load("spoke.yaml"))
}

fn load(file: &str) -> Value {
    let output = std::process::Command::new(python())
        .arg(repo_root().join("tests/template_json.py"))
        .arg(repo_root().join(file))
        .output()
        .expect("run tests/template_json.py");
    assert!(
        output.status.success(),
        "{file} does not load: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("template JSON")
}

/// A resource's `Properties`.
pub fn properties(logical_id: &str) -> &'static Value {
    let properties = &template()["Resources"][logical_id]["Properties"];
    assert!(properties.is_object(), "template.yaml has no resource {logical_id}");
    properties
}

/// The logical ids of the resources of one type, in template order.
pub fn resources_of_type(kind: &str) -> Vec<&'static str> {
    template()["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// The resources of one type the stack creates: those whose `Condition` holds.
pub fn created_of_type(stack: &Stack, kind: &str) -> Vec<&'static str> {
    resources_of_type(kind)
        .into_iter()
        .filter(|id| {
            template()["Resources"][*id]["Condition"]
                .as_str()
                .is_none_or(|c| stack.condition(c))
        })
        .collect()
}

/// What `Ref` and `Fn::GetAtt` resolve to: parameter values (defaults, then overrides) and the
/// physical ids of the resources the test bed created.
pub struct Stack {
    pub parameters: HashMap<String, String>,
    /// `Ref` of a resource: a queue's URL, a topic's ARN.
    pub refs: HashMap<String, String>,
    /// `Fn::GetAtt` as `Logical.Attribute`.
    pub attributes: HashMap<String, String>,
}

impl Stack {
    /// Parameter defaults with `overrides` on top.
    pub fn new(overrides: &[(&str, &str)]) -> Self {
        let mut parameters: HashMap<String, String> = template()["Parameters"]
            .as_object()
            .expect("Parameters")
            .iter()
            .map(|(name, p)| (name.clone(), scalar(&p["Default"]).unwrap_or_default()))
            .collect();
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "template.yaml has no parameter {name}");
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        // The pseudo parameters the stack's resources read, as the emulator's account has them.
        let refs = HashMap::from([("AWS::AccountId".to_owned(), crate::emulator::ACCOUNT.to_owned())]);
        Self {
            parameters,
            refs,
            attributes: HashMap::new(),
        }
    }

    /// Resolves a property value to a string.
    pub fn resolve(&self, value: &Value) -> String {
        if let Some(text) = scalar(value) {
            return text;
        }
        if let Some(name) = value.get("Ref").and_then(Value::as_str) {
            return self
                .parameters
                .get(name)
                .or_else(|| self.refs.get(name))
                .unwrap_or_else(|| panic!("Ref {name} is not known to the test bed"))
                .clone();
        }
        if let Some(branches) = value.get("Fn::If").and_then(Value::as_array) {
            let condition = branches[0].as_str().expect("Fn::If names a condition");
            let branch = if self.condition(condition) {
                &branches[1]
            } else {
                &branches[2]
            };
            return self.resolve(branch);
        }
        if let Some([delimiter, items]) = value.get("Fn::Join").and_then(Value::as_array).map(Vec::as_slice) {
            let delimiter = self.resolve(delimiter);
            return match items.as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| self.resolve(i))
                    .collect::<Vec<_>>()
                    .join(&delimiter),
                // A CommaDelimitedList parameter: its text is its items joined by commas.
                None => self.resolve(items).replace(',', &delimiter),
            };
        }
        if let Some(target) = value.get("Fn::GetAtt").and_then(Value::as_array) {
            let key = target.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".");
            return self
                .attributes
                .get(&key)
                .unwrap_or_else(|| panic!("GetAtt {key} is not known to the test bed"))
                .clone();
        }
        panic!("the test bed cannot resolve {value}")
    }

    /// Evaluates one of the template's `Conditions` (`Fn::Equals`, `Fn::Not`, `Fn::Or`, `Fn::And`).
    pub fn condition(&self, name: &str) -> bool {
        self.evaluate(&template()["Conditions"][name])
    }

    fn evaluate(&self, condition: &Value) -> bool {
        if let Some([a, b]) = condition.get("Fn::Equals").and_then(Value::as_array).map(Vec::as_slice) {
            return self.resolve(a) == self.resolve(b);
        }
        if let Some([inner]) = condition.get("Fn::Not").and_then(Value::as_array).map(Vec::as_slice) {
            return !self.evaluate(inner);
        }
        if let Some(name) = condition.get("Condition").and_then(Value::as_str) {
            return self.condition(name);
        }
        if let Some(any) = condition.get("Fn::Or").and_then(Value::as_array) {
            return any.iter().any(|c| self.evaluate(c));
        }
        if let Some(all) = condition.get("Fn::And").and_then(Value::as_array) {
            return all.iter().all(|c| self.evaluate(c));
        }
        panic!("the test bed cannot evaluate the condition {condition}")
    }

    /// The `AssertDescription` of each of the template's `Rules` these parameters break, in
    /// template order: CloudFormation refuses such a stack before creating anything.
    pub fn broken_rules(&self) -> Vec<String> {
        let Some(rules) = template()["Rules"].as_object() else {
            return Vec::new();
        };
        rules
            .values()
            .filter(|rule| rule.get("RuleCondition").is_none_or(|c| self.evaluate(c)))
            .flat_map(|rule| rule["Assertions"].as_array().expect("Assertions").iter())
            .filter(|assertion| !self.evaluate(&assertion["Assert"]))
            .map(|assertion| self.resolve(&assertion["AssertDescription"]))
            .collect()
    }

    /// The monitor function's environment variables, resolved.
    pub fn function_environment(&self) -> Vec<(String, String)> {
        self.environment_of("MonitorFunction")
    }

    /// A function's environment (by logical id) as the template sets it, resolved.
    pub fn environment_of(&self, function: &str) -> Vec<(String, String)> {
        properties(function)["Environment"]["Variables"]
            .as_object()
            .expect("a function environment")
            .iter()
            .map(|(name, value)| (name.clone(), self.resolve(value)))
            .collect()
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The Python of `.venv-sam` (SAM's translator and parliament): `WATCHDOG_SAM_PYTHON`, else the
/// project's `.venv-sam` (made by `make lint`, which `make test` runs first).
pub fn sam_python() -> std::path::PathBuf {
    crate::emulator::venv_python("WATCHDOG_SAM_PYTHON", ".venv-sam")
}

/// `template.yaml` as CloudFormation would deploy it for a stack name and parameters: SAM's
/// translator, then conditions and intrinsic functions resolved (`tests/render_template.py`;
/// account 123456789012, us-east-1).
pub fn rendered(stack_name: &str, parameters: &[(&str, &str)]) -> Value {
    rendered_file("template.yaml", stack_name, parameters)
}

/// Any of the repository's templates, rendered as [`rendered`] renders `template.yaml`.
pub fn rendered_file(file: &str, stack_name: &str, parameters: &[(&str, &str)]) -> Value {
    let mut command = std::process::Command::new(sam_python());
    command
        .arg(repo_root().join("tests/render_template.py"))
        .arg(repo_root().join(file))
        .args(["--stack-name", stack_name]);
    for (key, value) in parameters {
        command.arg("--param").arg(format!("{key}={value}"));
    }
    let output = command.output().expect("run tests/render_template.py");
    assert!(
        output.status.success(),
        "{file} does not render: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("rendered template JSON")
}
