#!/usr/bin/env python3
"""Lists cycles between the top-level modules of each crate (non-test code): a module
imports another through a `crate::module` path or a name the crate root re-exports.
Run from the repository root: python3 scripts/module-cycles.py"""
import os,re
def top_modules(src):
    mods=set()
    for f in os.listdir(src):
        if f.endswith('.rs') and f not in ('lib.rs','main.rs'): mods.add(f[:-3])
        elif os.path.isdir(os.path.join(src,f)): mods.add(f)
    return mods
def files_of(src,m):
    out=[]; p=os.path.join(src,m+'.rs')
    if os.path.exists(p): out.append(p)
    d=os.path.join(src,m)
    if os.path.isdir(d):
        for r,_,fs in os.walk(d): out+=[os.path.join(r,f) for f in fs if f.endswith('.rs')]
    return out
def code(path):
    t=open(path).read(); i=t.find('#[cfg(test)]'); t=t if i<0 else t[:i]
    return '\n'.join(l.split('//')[0] for l in t.split('\n'))
def root_exports(src,mods):
    # names re-exported at the crate root: pub use module::{A, B}; or pub use module::A;
    m={}
    for rootf in ('lib.rs','main.rs'):
        p=os.path.join(src,rootf)
        if not os.path.exists(p): continue
        t=code(p)
        for mod,body in re.findall(r'pub use ([a-z_]+)::\{([^}]*)\}',t):
            for name in re.findall(r'[A-Za-z_][A-Za-z0-9_]*',body): m[name]=mod
        for mod,name in re.findall(r'pub use ([a-z_]+)::([A-Za-z_][A-Za-z0-9_]*);',t): m[name]=mod
        # items defined in the root itself belong to 'root'
    return m
found=False
for crate in sorted(os.listdir('crates')):
    src=os.path.join('crates',crate,'src'); mods=top_modules(src); ex=root_exports(src,mods)
    g={m:set() for m in mods}
    for m in mods:
        for f in files_of(src,m):
            if f.endswith('_tests.rs') or f.endswith('test_support.rs') or '/tests' in f: continue
            t=code(f)
            for r in re.findall(r'crate::([a-z_]+)',t):
                if r in mods and r!=m: g[m].add(r)
            for body in re.findall(r'use crate::\{([^}]*)\}',t):
                for name in re.findall(r'[A-Za-z_][A-Za-z0-9_]*',body):
                    if name in ex and ex[name]!=m: g[m].add(ex[name])
            for name in re.findall(r'crate::([A-Z][A-Za-z0-9_]*|[a-z_]+_[a-z_]+)\b',t):
                if name in ex and ex[name]!=m: g[m].add(ex[name])
    color={};stack=[]
    def dfs(u):
        global found
        color[u]=1;stack.append(u)
        for v in sorted(g[u]):
            if color.get(v)==1: print(crate,'cycle:',' -> '.join(stack[stack.index(v):]+[v])); found=True
            elif color.get(v) is None: dfs(v)
        stack.pop();color[u]=2
    for m in sorted(mods):
        if m not in color: dfs(m)
print('cycles found' if found else 'no cycles')
