"""Write a random-weight Gemma 3 270M-shaped MLX 4-bit model (g64) for speed tests: python3 bench/make_synthetic_270m.py OUT_DIR"""
import numpy as np, json, mlx.core as mx, sys
out=sys.argv[1]
D,F,L,H,KV,Dh,V=640,2048,18,4,1,256,262144
rng=np.random.default_rng(0)
cfg=dict(model_type="gemma3_text",hidden_size=D,intermediate_size=F,num_hidden_layers=L,num_attention_heads=H,num_key_value_heads=KV,head_dim=Dh,vocab_size=V,sliding_window=512,query_pre_attn_scalar=256,rope_theta=1e6,rope_local_base_freq=1e4,max_position_embeddings=32768,quantization={"group_size":64,"bits":4})
w={}
def q(name,r,c):
    a=mx.array(rng.standard_normal((r,c),dtype=np.float32)*c**-0.5).astype(mx.bfloat16)
    qq,s,b=mx.quantize(a,group_size=64,bits=4)
    w[name+".weight"]=qq; w[name+".scales"]=s; w[name+".biases"]=b
q("model.embed_tokens",V,D)
w["model.norm.weight"]=mx.zeros((D,),dtype=mx.bfloat16)
for l in range(L):
    p=f"model.layers.{l}."
    q(p+"self_attn.q_proj",H*Dh,D); q(p+"self_attn.k_proj",KV*Dh,D); q(p+"self_attn.v_proj",KV*Dh,D); q(p+"self_attn.o_proj",D,H*Dh)
    q(p+"mlp.gate_proj",F,D); q(p+"mlp.up_proj",F,D); q(p+"mlp.down_proj",D,F)
    for n in ["input_layernorm","post_attention_layernorm","pre_feedforward_layernorm","post_feedforward_layernorm"]: w[p+n+".weight"]=mx.zeros((D,),dtype=mx.bfloat16)
    for n in ["q_norm","k_norm"]: w[p+"self_attn."+n+".weight"]=mx.zeros((Dh,),dtype=mx.bfloat16)
mx.save_safetensors(out+"/model.safetensors",w,metadata={"format":"mlx"})
json.dump(cfg,open(out+"/config.json","w"))
