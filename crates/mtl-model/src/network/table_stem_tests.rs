//! The feature stem with embedded categorical columns: each row's trailing ids looked up in
//! one embedding table and appended to its numeric values, under every strategy, with a
//! finite-difference gradient check of the embedding and everything after it.

use super::*;
use crate::init::InitScheme;
use crate::testing::all_sharings;
use mtl_data::Embedded;

/// 2 numeric values, then 2 id columns (column 0 owns rows 0–2, column 1 rows 3–4), dim 3.
const INPUT: InputSpec = InputSpec::Features { size: 2, embedded: Embedded { columns: 2, rows: 5, dim: 3 } };

fn spec(sharing: Sharing) -> ModelSpec {
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "income".into(), input: INPUT, n_classes: 2 },
            TaskSpec { name: "married".into(), input: INPUT, n_classes: 2 },
        ],
        sharing,
        trunk: TrunkSpec::Mlp { width: 4, depth: 2 },
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

fn rows(dtype: DType) -> Result<Tensor> {
    Tensor::from_vec(vec![0.5f64, -1.0, 1.0, 4.0, 0.1, 0.2, 0.0, 3.0, -0.3, 0.7, 2.0, 3.0], (3, 4), &Device::Cpu)?
        .to_dtype(dtype)
}

#[test]
fn the_stem_appends_each_id_s_embedding_row_to_the_numeric_values() -> Result<()> {
    let backend = std::sync::Arc::new(crate::init::SeededBackend::new(3));
    let vb = backend.builder(DType::F64, &Device::Cpu);
    let stem = stem::Stem::new(&INPUT, spec(Sharing::Hard).trunk, InitScheme::Framework, vb.pp("stems.features"))?;
    let out = stem.forward(&rows(DType::F64)?, &Dropout::off())?.to_vec2::<f64>()?;
    let table =
        backend.parameters().named().find(|(n, _)| *n == "stems.features.embedding.weight").map(|(_, v)| v.clone());
    let table = table.expect("the embedding table").as_tensor().to_vec2::<f64>()?;
    assert_eq!(table.len(), 5);
    // Row 0: 0.5, −1, then table rows 1 and 4.
    let expected: Vec<f64> =
        [0.5, -1.0].into_iter().chain(table[1].iter().copied()).chain(table[4].iter().copied()).collect();
    assert_eq!(out[0], expected);
    assert_eq!(out[1].len(), 2 + 2 * 3);
    Ok(())
}

#[test]
fn every_strategy_with_embedded_columns_passes_a_finite_difference_gradient_check() -> Result<()> {
    let xs = rows(DType::F64)?;
    for sharing in all_sharings() {
        let (net, params) = MultiTaskNet::new(&spec(sharing), 2, DType::F64, &Device::Cpu)?;
        assert_eq!(net.forward(0, &xs)?.dims(), &[3, 2]);
        let vars: Vec<(&str, &candle_core::Var)> = params.named().collect();
        // One table, or one per task's stem under single-task.
        let tables =
            vars.iter().filter(|(name, _)| name.starts_with("stems.features.") && name.ends_with("embedding.weight"));
        let expected = if sharing == Sharing::SingleTask { 2 } else { 1 };
        assert_eq!(tables.count(), expected, "{}", sharing.label());
        crate::testing::check_gradients(&vars, 10, || {
            let mut rng = mtl_data::Rng::new(0);
            let mut total = net.penalty()?.unwrap_or(Tensor::zeros((), DType::F64, &Device::Cpu)?);
            for (task, representation) in net.representations_train(&[0, 1], &xs, &mut rng)?.iter().enumerate() {
                let output = net.head(task, representation)?;
                total = (total + (output.sqr()? * (1.0 + task as f64))?.sum_all()?)?;
            }
            Ok(total)
        })
        .map_err(|e| e.context(sharing.label()))?;
    }
    Ok(())
}
