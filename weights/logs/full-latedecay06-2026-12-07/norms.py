# python3 norms.py PARAMS_F32.gguf AVERAGE_F32.gguf: the Frobenius norm of every f32 tensor in the
# two checkpoints of one run (raw parameters, weight average) and their ratio. An analysis
# aid for the model card (section "Late weight decay 0.6"), not part of the product; reads
# the GGUF v3 layout of weights/README.md ("File layout") and trusts its input.
import struct, sys, array, math
def read(path):
    b = open(path, 'rb').read(); o = 0
    def u(fmt):
        nonlocal o; v = struct.unpack_from('<' + fmt, b, o); o += struct.calcsize('<' + fmt); return v[0]
    def s():
        nonlocal o; n = u('Q'); v = b[o:o+n].decode(); o += n; return v
    sz = {0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'B',10:'Q',11:'q',12:'d'}
    def val(t):
        if t == 8: return s()
        if t == 9:
            et = u('I'); n = u('Q'); return [val(et) for _ in range(n)]
        return u(sz[t])
    assert b[:4] == b'GGUF'; o = 4; u('I'); nt = u('Q'); nkv = u('Q')
    align = 32
    for _ in range(nkv):
        k = s(); t = u('I'); v = val(t)
        if k == 'general.alignment': align = v
    infos = []
    for _ in range(nt):
        name = s(); nd = u('I'); dims = [u('Q') for _ in range(nd)]; t = u('I'); off = u('Q')
        infos.append((name, dims, t, off))
    base = (o + align - 1) // align * align
    out = {}
    for name, dims, t, off in infos:
        if t != 0: continue
        n = math.prod(dims); a = array.array('f'); a.frombytes(b[base+off: base+off+4*n])
        out[name] = math.sqrt(math.fsum(x*x for x in a))
    return out
p, e = read(sys.argv[1]), read(sys.argv[2])
for k in p:
    if k in e and k.startswith('blk.') and p[k] > 0:
        print('%-40s params %8.3f  average %8.3f  ratio %.4f' % (k, p[k], e[k], e[k]/p[k]))
def summary(what, keep):
    r = [e[k]/p[k] for k in p if k in e and p[k] > 0 and keep(k)]
    print('%s: %d tensors, ratio average/params mean %.4f min %.4f max %.4f' % (what, len(r), sum(r)/len(r), min(r), max(r)))
summary('all', lambda k: True)
# the trainer decays the blocks' matrices only (not the embedding, R, norms or biases)
summary('decayed block matrices', lambda k: k.startswith('blk.') and k.endswith('.weight') and 'norm' not in k)
summary('LayerNorm gains', lambda k: k.endswith('norm.weight'))
