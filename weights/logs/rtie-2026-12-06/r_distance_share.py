#!/usr/bin/env python3
# r_distance_share.py MODEL.gguf - for each layer's R [H, L, L] of an f32
# random-synthesizer checkpoint: the share of the row-centred causal logits
# (softmax ignores a per-row constant) that is a function of distance i - j
# alone: 1 - |residual|^2 / |centred R|^2, where the fit is each
# diagonal's mean (re-centred per row). Pure Python, no dependencies.
# (R stays f32 in the q8_0 files.) The model card's figures, from the
# shipped weights/synthesizer-wt2-q8_0.gguf: shipped-r-share.txt
import struct, sys, array, math
f=open(sys.argv[1],'rb'); b=f.read()
o=0
def rd(fmt):
    global o
    v=struct.unpack_from('<'+fmt,b,o); o+=struct.calcsize('<'+fmt); return v[0]
def rs():
    global o
    n=rd('Q'); s=b[o:o+n].decode(); o+=n; return s
assert b[:4]==b'GGUF'; o=4
ver=rd('I'); nt=rd('Q'); nkv=rd('Q')
sz={0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
align=32
def rv(t):
    if t==8: return rs()
    if t==9:
        et=rd('I'); n=rd('Q'); return [rv(et) for _ in range(n)]
    return rd(sz[t])
for _ in range(nkv):
    k=rs(); t=rd('I'); v=rv(t)
    if k=='general.alignment': align=v
ti=[]
for _ in range(nt):
    name=rs(); nd=rd('I'); dims=[rd('Q') for _ in range(nd)]; ty=rd('I'); off=rd('Q'); ti.append((name,dims,ty,off))
base=(o+align-1)//align*align
for name,dims,ty,off in ti:
    if 'synth' not in name and '.r' not in name[-3:] and 'attn_r' not in name: continue
    if ty!=0: print(name,'type',ty); continue
    n=1
    for d in dims: n*=d
    a=array.array('f'); a.frombytes(b[base+off:base+off+4*n])
    L=dims[0]; H=n//(L*L)
    out=[]
    for h in range(H):
        R=a[h*L*L:(h+1)*L*L]
        # causal entries i>=j, row-centered (softmax is invariant to a per-row constant)
        rows=[]
        for i in range(L):
            r=[R[i*L+j] for j in range(i+1)]; m=sum(r)/len(r); rows.append([x-m for x in r])
        # diagonal means of centered rows
        dm=[0.0]*L; dc=[0]*L
        for i in range(L):
            for j in range(i+1): dm[i-j]+=rows[i][j]; dc[i-j]+=1
        dm=[dm[k]/dc[k] for k in range(L)]
        tot=res=0.0
        for i in range(1,L):
            # re-centre the Toeplitz fit per row too
            t=[dm[i-j] for j in range(i+1)]; mt=sum(t)/len(t)
            for j in range(i+1):
                tot+=rows[i][j]**2; res+=(rows[i][j]-(t[j]-mt))**2
        out.append(1-res/tot)
    print(name, dims, 'Toeplitz share of row-centred causal variance per head:', ' '.join('%.3f'%x for x in out))
