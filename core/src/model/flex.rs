//! pith's CPU kernels on Burn tensors: a backend extension on the flex device, which
//! reads tensors where flex keeps them and wraps the kernels' output without a copy.

use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::tensor::activation;
use burn::tensor::{Bytes, DType, Device, FloatDType, Shape, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use pith_kernels::Isa;

use crate::error::{Error, Result};

/// A tensor's flex primitive, contiguous: what pith's kernels read in place (a backend
/// extension on the CPU device).
pub fn on_flex<const D: usize>(x: Tensor<D>) -> Result<FlexTensor> {
    let x = x.try_into_primitive::<Flex>().map_err(|e| {
        Error::Unsupported(format!(
            "pith's CPU kernels run on the CPU device only ({e:?})"
        ))
    })?;
    Ok(if x.is_contiguous() {
        x
    } else {
        x.to_contiguous()
    })
}

/// The values of a contiguous flex tensor of element type `E`.
pub fn flex_values<E: burn::tensor::Element + bytemuck::Pod>(x: &FlexTensor) -> Result<&[E]> {
    x.as_slice::<E>().ok_or_else(|| {
        Error::Device(format!(
            "a {:?} tensor where {} was expected",
            x.dtype(),
            std::any::type_name::<E>()
        ))
    })
}

/// The f32 values of a flex tensor, to overwrite in place: copied first when another
/// tensor shares the buffer; an error for another element type, where `storage_mut`
/// would panic.
fn values_mut(x: &mut FlexTensor) -> Result<&mut [f32]> {
    flex_values::<f32>(x)?;
    let (at, n) = (x.layout().start_offset(), x.layout().num_elements());
    Ok(&mut x.storage_mut::<f32>()[at..at + n])
}

/// `x` as `dtype`. Between f32 and f16 on the flex device the conversion runs on
/// `half`'s SIMD slices (flex's own cast converts one value at a time, which made the
/// f16 cache cost prefill 5-10%).
pub fn cast<const D: usize>(x: Tensor<D>, dtype: FloatDType) -> Result<Tensor<D>> {
    let from: FloatDType = x.dtype().into();
    if from == dtype || x.device() != Device::flex() {
        return Ok(x.cast(dtype));
    }
    let dims = x.dims();
    let x = on_flex(x)?;
    Ok(match (from, dtype) {
        (FloatDType::F16, FloatDType::F32) => {
            let mut out = vec![0f32; x.layout().num_elements()];
            flex_values::<f16>(&x)?.convert_to_f32_slice(&mut out);
            from_flex(out, dims)
        }
        (FloatDType::F32, FloatDType::F16) => {
            let mut out = vec![f16::ZERO; x.layout().num_elements()];
            out.convert_from_f32_slice(flex_values::<f32>(&x)?);
            Tensor::from_primitive::<Flex>(FlexTensor::new(
                Bytes::from_elems(out),
                Layout::contiguous(Shape::new(dims)),
                DType::F16,
            ))
        }
        _ => Tensor::<D>::from_primitive::<Flex>(x).cast(dtype),
    })
}

/// f32 values `[dims]` as a tensor on the flex device, without a copy.
pub fn from_flex<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> Tensor<D> {
    let layout = Layout::contiguous(Shape::new(dims));
    Tensor::from_primitive::<Flex>(FlexTensor::new(
        Bytes::from_elems(values),
        layout,
        DType::F32,
    ))
}

/// GELU (erf form). On the flex device pith's kernel computes it in place (flex's own
/// evaluates erf one value at a time through libm: 15% of the embedder's time).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>> {
    if x.device() != Device::flex() {
        return Ok(activation::gelu(x));
    }
    let mut x = on_flex(x)?;
    if x.dtype() != DType::F32 {
        return Ok(activation::gelu(Tensor::from_primitive::<Flex>(x)));
    }
    pith_kernels::activation::gelu(Isa::best(), values_mut(&mut x)?);
    Ok(Tensor::from_primitive::<Flex>(x))
}

/// The embedder's self-attention on the flex device: `qkv` `[b, t, 3h]` (queries, keys
/// and values of `heads` heads side by side), `lens` the real tokens of each passage;
/// `[b, t, h]`, padding rows zero. See [`pith_kernels::self_attention`].
pub fn self_attention(qkv: Tensor<3>, lens: &[usize], heads: usize) -> Result<Tensor<3>> {
    let [b, t, width] = qkv.dims();
    if lens.len() != b {
        return Err(Error::InvalidArgument(format!(
            "{} passage lengths for a batch of {b}",
            lens.len()
        )));
    }
    let qkv = on_flex(qkv)?;
    let passages = pith_kernels::self_attention::Passages {
        qkv: flex_values(&qkv)?,
        t,
        width,
        lens,
        heads,
    };
    let out = pith_kernels::self_attention::self_attention(Isa::best(), passages);
    Ok(from_flex(out, [b, t, width / 3]))
}

/// `LayerNorm(x + residual)` over the last dimension, computed in place in `x`'s buffer
/// (see [`pith_kernels::norm`]).
pub fn add_layer_norm<const D: usize>(
    x: Tensor<D>,
    residual: Tensor<D>,
    weight: &Tensor<1>,
    bias: &Tensor<1>,
    eps: f64,
) -> Result<Tensor<D>> {
    let mut x = on_flex(x)?;
    let (residual, weight, bias) = (
        on_flex(residual)?,
        on_flex(weight.clone())?,
        on_flex(bias.clone())?,
    );
    let norm = pith_kernels::norm::Norm {
        weight: flex_values(&weight)?,
        bias: flex_values(&bias)?,
        eps: eps as f32,
    };
    let residual = flex_values::<f32>(&residual)?;
    pith_kernels::norm::add_layer_norm(Isa::best(), values_mut(&mut x)?, residual, norm);
    Ok(Tensor::from_primitive::<Flex>(x))
}

/// `x · weight_t + bias` (a linear layer whose weight is stored transposed, `[in,
/// out]`), the bias added inside the product (see [`pith_kernels::matmul::affine`]).
pub fn linear(x: Tensor<2>, weight_t: &Tensor<2>, bias: &Tensor<1>) -> Result<Tensor<2>> {
    let [n, ins] = x.dims();
    let out = bias.dims()[0];
    let (x, weight_t, bias) = (
        on_flex(x)?,
        on_flex(weight_t.clone())?,
        on_flex(bias.clone())?,
    );
    let y = pith_kernels::matmul::affine(
        flex_values(&x)?,
        [n, ins],
        flex_values(&weight_t)?,
        flex_values(&bias)?,
    );
    Ok(from_flex(y, [n, out]))
}
