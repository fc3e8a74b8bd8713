// PostGraphile 5 targets Node 22+; Node 20 lacks Promise.withResolvers (ES2024). Preloaded with
// `node --require ./polyfill.cjs server.mjs` so the baseline runs on the Node this machine has.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
