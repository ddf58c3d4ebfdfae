module.exports = class CreatePayees1767225600001 {
  name = 'CreatePayees1767225600001';

  async up(queryRunner) {
    await queryRunner.query(`CREATE TABLE "payees" ("id" BIGSERIAL NOT NULL, "name" text NOT NULL, CONSTRAINT "PK_payees" PRIMARY KEY ("id"))`);
  }

  async down(queryRunner) {
    await queryRunner.query(`DROP TABLE "payees"`);
  }
};
