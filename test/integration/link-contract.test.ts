// The NodeLink contract against both links, each talking to a real node process that serves both.
import { describeNodeLinkContract } from '../contract/node-link.case.js';

describeNodeLinkContract('HTTP/1.1 (HttpNodeLink)', (node) => `http://127.0.0.1:${node.port}`);
describeNodeLinkContract('binary link (BinaryNodeLink)', (node) => `relaygate+tcp://127.0.0.1:${node.linkPort}`);
