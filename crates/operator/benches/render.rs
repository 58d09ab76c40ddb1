//! Render of the every-field KedaController (target: median under 1 ms).

use cma_operator::platform::Platform;
use cma_operator::render::{RenderContext, render};
use criterion::{Criterion, criterion_group, criterion_main};

fn every_field() -> cma_api::KedaController {
    let text = include_str!("../tests/fixtures/every-field.yaml");
    match cma_api::document::from_yaml(text) {
        Ok(kc) => kc,
        Err(e) => panic!("fixture every-field.yaml: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let kc = every_field();
    let valid = match cma_api::validate(&kc) {
        Ok(valid) => valid,
        Err(e) => panic!("fixture every-field.yaml is invalid: {e}"),
    };
    for (name, platform) in [("kubernetes", Platform::kubernetes()), ("openshift", Platform::openshift())] {
        let ctx = RenderContext::offline(platform);
        c.bench_function(&format!("render every-field ({name})"), |b| {
            b.iter(|| render(std::hint::black_box(valid), &ctx))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
