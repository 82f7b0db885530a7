// Published SigV4 test vectors, kept as our own fixtures.
//
// Suite: the AWS SigV4 test suite (service "service", us-east-1, AKIDEXAMPLE,
// 20150830T123600Z, empty body). S3 does not normalise paths, so only cases
// whose path is the same normalised or not are used, plus the suite's
// "unnormalized" slash case.
// S3: the examples of the S3 API reference (examplebucket,
// AKIAIOSFODNN7EXAMPLE, 20130524T000000Z).

export const suiteCredentials = { accessKeyId: 'AKIDEXAMPLE', secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
export const suiteAmzDate = '20150830T123600Z';
export const suiteScope = '20150830/us-east-1/service/aws4_request';

export interface SuiteCase {
  name: string;
  method: string;
  rawPath: string;
  rawQuery: string;
  /** Extra headers besides host and x-amz-date, wire names. */
  headers: Record<string, string>;
  signature: string;
}

export const suiteCases: SuiteCase[] = [
  { name: 'get-vanilla', method: 'GET', rawPath: '/', rawQuery: '', headers: {}, signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  {
    name: 'get-vanilla-query-order-key-case',
    method: 'GET',
    rawPath: '/',
    rawQuery: 'Param2=value2&Param1=value1',
    headers: {},
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'get-vanilla-query-unreserved',
    method: 'GET',
    rawPath: '/',
    rawQuery:
      '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    headers: {},
    signature: '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
  },
  { name: 'get-vanilla-utf8-query', method: 'GET', rawPath: '/', rawQuery: '%E1%88%B4=bar', headers: {}, signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04' },
  { name: 'get-space', method: 'GET', rawPath: '/example%20space/', rawQuery: '', headers: {}, signature: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741' },
  { name: 'get-utf8', method: 'GET', rawPath: '/%E1%88%B4', rawQuery: '', headers: {}, signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85' },
  { name: 'get-slashes-unnormalized', method: 'GET', rawPath: '//example//', rawQuery: '', headers: {}, signature: '87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5' },
  { name: 'post-vanilla', method: 'POST', rawPath: '/', rawQuery: '', headers: {}, signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
  { name: 'post-vanilla-query', method: 'POST', rawPath: '/', rawQuery: 'Param1=value1', headers: {}, signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
  { name: 'post-header-key-sort', method: 'POST', rawPath: '/', rawQuery: '', headers: { 'My-Header1': 'value1' }, signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c' },
  {
    name: 'get-header-value-trim',
    method: 'GET',
    rawPath: '/',
    rawQuery: '',
    headers: { 'My-Header1': ' value1', 'My-Header2': ' "a   b   c"' },
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
];

export const s3Credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
export const s3AmzDate = '20130524T000000Z';
export const s3Now = Date.UTC(2013, 4, 24, 0, 0, 0);
export const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface S3HeaderCase {
  name: string;
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: Record<string, string>;
  signedHeaders: string;
  signature: string;
}

const exampleHost = 'examplebucket.s3.amazonaws.com';

export const s3HeaderCases: S3HeaderCase[] = [
  {
    name: 'GET Object',
    method: 'GET',
    rawPath: '/test.txt',
    rawQuery: '',
    headers: { host: exampleHost, range: 'bytes=0-9', 'x-amz-content-sha256': emptyHash, 'x-amz-date': s3AmzDate },
    signedHeaders: 'host;range;x-amz-content-sha256;x-amz-date',
    signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  },
  {
    name: 'PUT Object',
    method: 'PUT',
    rawPath: '/test%24file.text',
    rawQuery: '',
    headers: {
      host: exampleHost,
      date: 'Fri, 24 May 2013 00:00:00 GMT',
      'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      'x-amz-date': s3AmzDate,
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    },
    signedHeaders: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    signature: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
  },
  {
    name: 'GET Bucket Lifecycle',
    method: 'GET',
    rawPath: '/',
    rawQuery: 'lifecycle',
    headers: { host: exampleHost, 'x-amz-content-sha256': emptyHash, 'x-amz-date': s3AmzDate },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
  },
  {
    name: 'GET Bucket (list objects)',
    method: 'GET',
    rawPath: '/',
    rawQuery: 'max-keys=2&prefix=J',
    headers: { host: exampleHost, 'x-amz-content-sha256': emptyHash, 'x-amz-date': s3AmzDate },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
  },
];

/** The presigned GET Object example (expires in 86400 s). */
export const s3PresignedQuery =
  'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
  '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

/** The chunked upload example: 66560 bytes of 'a' as 65536 + 1024 + 0. */
export const chunkedExample = {
  rawPath: '/examplebucket/chunkObject.txt',
  headers: {
    host: 's3.amazonaws.com',
    'x-amz-date': s3AmzDate,
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
  },
  signedHeaders: 'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
  seedSignature: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  chunks: [
    { size: 65536, signature: 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648' },
    { size: 1024, signature: '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497' },
    { size: 0, signature: 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9' },
  ],
  /** aws-c-auth's trailer example, chained from the final chunk signature. */
  trailers: [
    ['first', '1st'],
    ['second', '2nd'],
    ['third', '3rd'],
  ] as const,
  trailerSignature: 'df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c',
};
