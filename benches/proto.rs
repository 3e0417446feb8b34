//! Protocol core micro-benchmarks: unmask variants, frame parsing, stream decoding, encoding.
//!
//! `cargo bench --bench proto` — results and ratios in results/proto-bench.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast::proto::encode::{encode_header, write_client_frame, write_server_frame};
use ringcast::proto::frame::{FrameConfig, decode_frame, decode_header};
use ringcast::proto::mask::{
    apply_mask, apply_mask_avx2, apply_mask_bytewise, apply_mask_u64, unmask_into_avx2,
    unmask_into_bytewise, unmask_into_u64,
};
use ringcast::proto::{Decoder, DecoderConfig, Event, OpCode, Role};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const SIZES: [usize; 4] = [16, 125, 1024, 16 * 1024];

fn unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        type F = fn(&mut [u8], [u8; 4], usize);
        let variants: [(&str, F); 4] = [
            ("bytewise", apply_mask_bytewise),
            ("u64", apply_mask_u64),
            ("avx2", apply_mask_avx2),
            ("dispatch", apply_mask),
        ];
        for (name, f) in variants {
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| f(black_box(&mut buf), black_box(KEY), 1))
            });
        }
        let src = vec![0x5au8; size];
        type C = fn(&[u8], &mut [u8], [u8; 4], usize);
        let copying: [(&str, C); 3] = [
            ("copy_bytewise", unmask_into_bytewise),
            ("copy_u64", unmask_into_u64),
            ("copy_avx2", unmask_into_avx2),
        ];
        for (name, f) in copying {
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| f(black_box(&src), black_box(&mut buf), KEY, 1))
            });
        }
    }
    g.finish();
}

/// 100 masked client frames of `size` bytes back to back, as one read would deliver them.
fn client_stream(size: usize) -> Vec<u8> {
    let payload = vec![b'x'; size];
    let mut wire = Vec::new();
    for _ in 0..100 {
        write_client_frame(&mut wire, true, OpCode::Text, &payload, KEY);
    }
    wire
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let cfg = FrameConfig::new(Role::Server, 1 << 24);
    for size in [16usize, 125, 1024] {
        let wire = client_stream(size);
        g.throughput(Throughput::Elements(100));
        g.bench_with_input(
            BenchmarkId::new("header_only_x100", size),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let mut at = 0;
                    while at < wire.len() {
                        let ringcast::proto::Decoded::Complete((h, n)) =
                            decode_header(&wire[at..], &cfg).unwrap()
                        else {
                            unreachable!()
                        };
                        at += n + h.payload_len as usize;
                    }
                    at
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("in_place_x100", size), &wire, |b, wire| {
            let mut buf = wire.clone();
            b.iter(|| {
                buf.copy_from_slice(wire);
                let mut at = 0;
                while at < buf.len() {
                    let ringcast::proto::Decoded::Complete(f) =
                        decode_frame(&mut buf[at..], &cfg).unwrap()
                    else {
                        unreachable!()
                    };
                    at += f.len;
                }
                at
            })
        });
        g.bench_with_input(BenchmarkId::new("decoder_x100", size), &wire, |b, wire| {
            let mut d = Decoder::new(DecoderConfig {
                role: Role::Server,
                max_frame_size: 1 << 24,
                max_message_size: 1 << 24,
            });
            b.iter(|| {
                let mut input = &wire[..];
                let mut n = 0;
                while let Some(ev) = d.decode(&mut input).unwrap() {
                    if let Event::Message(m) = ev {
                        n += m.payload().len();
                        d.recycle(m.into_buffer());
                    }
                }
                n
            })
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.bench_function("header_16bit", |b| {
        b.iter(|| encode_header(true, OpCode::Text, None, black_box(200)))
    });
    for size in [100usize, 16 * 1024] {
        let payload = vec![b'x'; size];
        let mut out = Vec::with_capacity(size + 64);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("server_frame", size), &size, |b, _| {
            b.iter(|| {
                out.clear();
                write_server_frame(&mut out, OpCode::Text, black_box(&payload));
                out.len()
            })
        });
        g.bench_with_input(
            BenchmarkId::new("client_frame_masked", size),
            &size,
            |b, _| {
                b.iter(|| {
                    out.clear();
                    write_client_frame(&mut out, true, OpCode::Text, black_box(&payload), KEY);
                    out.len()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, unmask, parse, encode);
criterion_main!(benches);
