// The part of autocannon's programmatic API the http scenario uses (the package ships no types).
declare module 'autocannon' {
  interface Percentiles { average: number; min: number; max: number; p50: number; p90: number; p99: number; p99_9: number; total: number }
  interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    connections?: number;
    pipelining?: number;
    duration?: number;
    timeout?: number;
    workers?: number;
  }
  interface Result {
    requests: Percentiles;
    latency: Percentiles;
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats: Record<string, { count: number }>;
    '2xx': number;
  }
  function autocannon(opts: Options): Promise<Result>;
  export default autocannon;
}
