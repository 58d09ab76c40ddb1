//! What must-gather collects covers what the operator writes: a kind added to the operator's table of
//! managed kinds (`cma_operator::kinds`) fails here until must-gather collects it too.

use cma_must_gather::collect::{APISERVICES, NAMESPACE_KINDS, VWCS};

#[test]
fn every_kind_the_operator_writes_is_collected() {
    let cluster_collected = [APISERVICES, VWCS];
    for kind in cma_operator::kinds::managed() {
        let (group, plural) = (kind.resource.group.as_str(), kind.resource.plural.as_str());
        let collected = if kind.namespaced { NAMESPACE_KINDS } else { &cluster_collected[..] };
        assert!(
            collected.iter().any(|k| k.group == group && k.resource == plural),
            "the operator writes {} ({plural}.{group}) but must-gather does not collect it",
            kind.resource.kind
        );
    }
}
